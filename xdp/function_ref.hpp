// A non-owning reference to a callable (like C++26 std::function_ref): the RX
// path hands every frame to the engine through one indirect call, with no
// allocation and no template leaking the ring code into headers.
#pragma once
#include <memory>
#include <type_traits>
#include <utility>

#include "stack/base/bytes.hpp"

namespace xs {

template <class Sig>
class FunctionRef;

template <class R, class... Args>
class FunctionRef<R(Args...)> {
 public:
  template <class F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> &&
             std::is_invocable_r_v<R, F&, Args...>)
  FunctionRef(F&& f)  // NOLINT implicit by design, like std::function_ref
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* obj, Args... args) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<Args>(args)...);
        }) {}

  R operator()(Args... args) const { return call_(obj_, std::forward<Args>(args)...); }

 private:
  void* obj_;
  R (*call_)(void*, Args...);
};

// Receives one Ethernet frame. The bytes live in the UMEM and are valid only
// during the call -- the frame goes back to the fill ring right after --
// unless the handler holds it (XskSocket::hold_current, zero-copy receive).
using RxHandler = FunctionRef<void(Bytes)>;

}  // namespace xs
