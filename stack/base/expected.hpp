// A minimal std::expected stand-in (GCC 12 ships <expected> only for C++23).
// Errors inside the stack are typed; errno exists only at the API boundary.
#pragma once
#include <utility>
#include <variant>

namespace xs {

template <class E>
struct Unexpected {
  E error;
};
template <class E>
Unexpected<E> unexpected(E e) { return {std::move(e)}; }

template <class T, class E>
class [[nodiscard]] Expected {
 public:
  Expected(T v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT implicit by design
  Expected(Unexpected<E> e) : v_(std::in_place_index<1>, std::move(e.error)) {}  // NOLINT
  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T& operator*() { return value(); }
  const T& operator*() const { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const E& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

// Expected<void, E>
template <class E>
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Unexpected<E> e) : ok_(false), e_(std::move(e.error)) {}  // NOLINT
  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const { return e_; }

 private:
  bool ok_ = true;
  E e_{};
};

}  // namespace xs
