// xstack's own XDP program (xdp/bpf/xstack_redirect.bpf.c, embedded in the
// library) attached to one interface as a bpf_link, plus its maps: `flows`
// (proto, dst IP, dst port) -> XSKMAP slot and `xsks` slot -> AF_XDP socket.
//
// Attach as a bpf_link, never via netlink: the kernel detaches a link when
// its last fd closes, so a crashed process leaves nothing behind. Programs
// attached via netlink (an older run, ip link, xdp-loader) stay after their
// process dies; attach() finds one with bpf_xdp_query and removes it with
// bpf_xdp_detach first (the kernel refuses to attach a link over a netlink
// program). A program owned by a live link (another running xstack) is never
// removed: the kernel answers EBUSY and attach() fails. Nothing is pinned, so
// bpffs is not needed (inside `ip netns exec` it is not mounted).
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "stack/base/addr.hpp"
#include "stack/base/bytes.hpp"
#include "stack/base/expected.hpp"

struct bpf_object;
struct bpf_link;

namespace xs {

// The `proto` of a flow: an IP protocol number, or kArp for ARP requests and
// replies whose target IP is the flow's address.
enum class FlowProto : uint8_t { kIcmp = 1, kTcp = 6, kUdp = 17, kArp = 0xFE };

// Slot value meaning "the socket of the queue the frame arrived on" (slot i is
// the socket bound to RX queue i). An XSK only accepts frames of its own queue.
inline constexpr uint32_t kSlotRxQueue = 0xFFFFFFFFu;
inline constexpr uint32_t kMaxXskSlots = 64;

struct XdpProgramOptions {
  // Replace a netlink-attached program that is not ours (by name). Off: such a
  // program belongs to someone else and attach() fails, naming it.
  bool replace_foreign = false;
};

// Summed over CPUs from the program's per-CPU `stats` array.
struct XdpProgramStats {
  uint64_t redirected = 0;  // flow hit
  uint64_t passed = 0;      // no flow: to the kernel
  uint64_t short_frames = 0;  // truncated headers: to the kernel
};

class XdpProgram {
 public:
  static constexpr const char* kProgramName = "xs_redirect";

  static Expected<std::unique_ptr<XdpProgram>, std::string> attach(int ifindex, const XdpProgramOptions& opts = {});
  ~XdpProgram();  // destroys the link: the program leaves the interface
  XdpProgram(const XdpProgram&) = delete;
  XdpProgram& operator=(const XdpProgram&) = delete;

  // dst and port in host order; port 0 = every port of dst (TCP/UDP), and is
  // the only port for ICMP and ARP.
  Status<std::string> add_flow(FlowProto proto, Ipv4Addr dst, uint16_t port, uint32_t slot = kSlotRxQueue);
  Status<std::string> remove_flow(FlowProto proto, Ipv4Addr dst, uint16_t port);
  Status<std::string> set_socket(uint32_t slot, int xsk_fd);
  Status<std::string> clear_socket(uint32_t slot);

  XdpProgramStats stats() const;
  int ifindex() const { return ifindex_; }
  uint32_t prog_id() const { return prog_id_; }
  // Id of the stale netlink-attached program attach() removed, 0 if none.
  uint32_t replaced_prog_id() const { return replaced_prog_id_; }
  const std::string& replaced_prog_name() const { return replaced_prog_name_; }

  // The compiled program as embedded in the library (an ELF object).
  static Bytes embedded_object();
  // Id of the XDP program attached to ifindex in any mode, 0 if none.
  static Expected<uint32_t, std::string> attached_prog_id(int ifindex);

 private:
  XdpProgram() = default;

  bpf_object* obj_ = nullptr;
  bpf_link* link_ = nullptr;
  int ifindex_ = 0;
  int flows_fd_ = -1;
  int xsks_fd_ = -1;
  int stats_fd_ = -1;
  uint32_t prog_id_ = 0;
  uint32_t replaced_prog_id_ = 0;
  std::string replaced_prog_name_;
};

}  // namespace xs
