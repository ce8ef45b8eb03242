#include "stack/tcp/cc_holder.hpp"

namespace xs {

bool CcHolder::select(std::string_view name, Instant now, uint32_t mss) {
  if (!is_known(name)) return false;
  if (name == this->name()) return true;

  const uint32_t old_cwnd = get().cwnd();
  const uint32_t old_ssthresh = get().ssthresh();
  const bool had_window = old_cwnd != 0;

  if (name == "cubic") {
    Cubic& c = v_.emplace<Cubic>();
    c.init(now, mss);
    if (had_window) c.set_state(old_cwnd, old_ssthresh);
  } else {
    NewReno& r = v_.emplace<NewReno>();
    r.init(now, mss);
    if (had_window) r.set_state(old_cwnd, old_ssthresh);
  }
  return true;
}

}  // namespace xs
