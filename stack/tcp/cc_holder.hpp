// A connection's congestion-control algorithm, stored inline (no heap, no
// per-connection allocation), selectable by its Linux name the way
// setsockopt(TCP_CONGESTION) selects it.
#pragma once
#include <cstdint>
#include <string_view>
#include <variant>

#include "stack/base/time.hpp"
#include "stack/tcp/congestion.hpp"
#include "stack/tcp/cubic.hpp"
#include "stack/tcp/newreno.hpp"

namespace xs {

class CcHolder {
 public:
  // CUBIC, Linux's default tcp_congestion_control. init() is the connection's
  // job once the MSS is known.
  CcHolder() = default;
  explicit CcHolder(bool cubic) {
    if (!cubic) v_.emplace<NewReno>();
  }

  CongestionControl& get() {
    return v_.index() == 0 ? static_cast<CongestionControl&>(std::get<0>(v_))
                           : static_cast<CongestionControl&>(std::get<1>(v_));
  }
  const CongestionControl& get() const {
    return v_.index() == 0 ? static_cast<const CongestionControl&>(std::get<0>(v_))
                           : static_cast<const CongestionControl&>(std::get<1>(v_));
  }
  CongestionControl* operator->() { return &get(); }

  // Switches to the named algorithm ("cubic" or "reno"); false, and nothing
  // changes, for any other name (the API layer maps that to ENOENT as Linux
  // does). Selecting the current algorithm is a no-op. Otherwise the new
  // algorithm is initialized and, if the old one already had a window, that
  // cwnd and ssthresh carry over: Linux tcp_reinit_congestion_control only
  // re-inits the algorithm's private state, so switching mid-connection
  // neither resets to IW nor reopens slow start.
  bool select(std::string_view name, Instant now, uint32_t mss);
  std::string_view name() const { return get().name(); }
  static bool is_known(std::string_view name) { return name == "cubic" || name == "reno"; }

 private:
  std::variant<Cubic, NewReno> v_;
};

}  // namespace xs
