// Two PacketDevices joined back to back in memory, with an eventfd per side
// so the interrupt-mode engine can sleep on them. For tests of the engine
// that need no privileges.
#pragma once
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "socketapi/packet_device.hpp"

namespace xs {

std::pair<std::unique_ptr<PacketDevice>, std::unique_ptr<PacketDevice>> make_memory_device_pair(MacAddr a, MacAddr b);

}  // namespace xs
