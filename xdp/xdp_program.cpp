#include "xdp/xdp_program.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "xdp/bpf/xstack_redirect.h"

namespace xs {

namespace xdp_embedded {
extern const uint8_t kXstackRedirectObject[];
extern const size_t kXstackRedirectObjectSize;
}  // namespace xdp_embedded

namespace {

// libbpf prints through a global callback: keep its warnings, drop its debug chatter.
int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  if (level == LIBBPF_DEBUG) return 0;
  return vfprintf(stderr, fmt, args);
}

void init_libbpf_once() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_print); });
}

std::string err(const std::string& what, int e) { return "xdp program: " + what + ": " + strerror(e); }

std::string prog_name(uint32_t id) {
  const int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) return "?";
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  std::string name = "?";
  if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) name = info.name;
  close(fd);
  return name;
}

xs_flow_key make_key(FlowProto proto, Ipv4Addr dst, uint16_t port) {
  xs_flow_key k;
  memset(&k, 0, sizeof(k));  // the padding is part of the hash key
  k.proto = uint8_t(proto);
  k.dst_ip = htonl(dst.v);
  k.dst_port = htons(port);
  return k;
}

}  // namespace

Bytes XdpProgram::embedded_object() {
  return Bytes(xdp_embedded::kXstackRedirectObject, xdp_embedded::kXstackRedirectObjectSize);
}

Expected<uint32_t, std::string> XdpProgram::attached_prog_id(int ifindex) {
  bpf_xdp_query_opts q{};
  q.sz = sizeof(q);
  if (int rc = bpf_xdp_query(ifindex, 0, &q); rc != 0) return unexpected(err("bpf_xdp_query", -rc));
  if (q.prog_id != 0) return q.prog_id;
  // XDP_ATTACHED_MULTI leaves prog_id 0 and reports per mode.
  if (q.drv_prog_id != 0) return q.drv_prog_id;
  if (q.skb_prog_id != 0) return q.skb_prog_id;
  return q.hw_prog_id;
}

Expected<std::unique_ptr<XdpProgram>, std::string> XdpProgram::attach(int ifindex, const XdpProgramOptions& opts) {
  init_libbpf_once();
  // libbpf reads the CPU count from /sys once and caches it: read it here,
  // in the attaching thread, so that stats() from the engine's thread later
  // opens no file (a descriptor the program could see appear and vanish).
  (void)libbpf_num_possible_cpus();
  std::unique_ptr<XdpProgram> p(new XdpProgram());
  p->ifindex_ = ifindex;

  bpf_object_open_opts oo{};
  oo.sz = sizeof(oo);
  oo.object_name = "xstack_redirect";
  const Bytes obj = embedded_object();
  p->obj_ = bpf_object__open_mem(obj.data(), obj.size(), &oo);
  if (p->obj_ == nullptr) return unexpected(err("open embedded object", errno));
  if (int rc = bpf_object__load(p->obj_); rc != 0) return unexpected(err("load (verifier log above)", -rc));
  bpf_program* prog = bpf_object__find_program_by_name(p->obj_, kProgramName);
  if (prog == nullptr) return unexpected(std::string("xdp program: no program named ") + kProgramName);
  p->flows_fd_ = bpf_object__find_map_fd_by_name(p->obj_, "flows");
  p->xsks_fd_ = bpf_object__find_map_fd_by_name(p->obj_, "xsks");
  p->stats_fd_ = bpf_object__find_map_fd_by_name(p->obj_, "stats");
  if (p->flows_fd_ < 0 || p->xsks_fd_ < 0 || p->stats_fd_ < 0) {
    return unexpected(std::string("xdp program: embedded object lacks a map"));
  }

  // A program already on the interface. Attached via netlink it outlived its
  // process (ours from an earlier crash, or someone's tool): replace it if it
  // is ours or the caller allows. Owned by a live bpf_link, the kernel refuses
  // to detach it (EBUSY) and we fail rather than fight another process.
  bpf_xdp_query_opts q{};
  q.sz = sizeof(q);
  if (int rc = bpf_xdp_query(ifindex, 0, &q); rc != 0) return unexpected(err("bpf_xdp_query", -rc));
  struct Mode {
    uint32_t id;
    uint32_t flag;
  };
  const Mode modes[] = {{q.drv_prog_id, XDP_FLAGS_DRV_MODE}, {q.skb_prog_id, XDP_FLAGS_SKB_MODE},
                        {q.hw_prog_id, XDP_FLAGS_HW_MODE}};
  for (const Mode& m : modes) {
    if (m.id == 0) continue;
    const std::string name = prog_name(m.id);
    if (name != kProgramName && !opts.replace_foreign) {
      return unexpected("xdp program: interface " + std::to_string(ifindex) + " already has XDP program '" + name +
                        "' (id " + std::to_string(m.id) + "); not ours, not replacing it");
    }
    if (int rc = bpf_xdp_detach(ifindex, m.flag, nullptr); rc != 0) {
      if (rc == -EBUSY) {
        return unexpected("xdp program: interface " + std::to_string(ifindex) + " has XDP program '" + name +
                          "' (id " + std::to_string(m.id) + ") owned by a live bpf_link: another process uses it");
      }
      return unexpected(err("detach stale program id " + std::to_string(m.id), -rc));
    }
    p->replaced_prog_id_ = m.id;
    p->replaced_prog_name_ = name;
    fprintf(stderr, "xs_xdp: removed stale XDP program '%s' (id %u) from ifindex %d\n", name.c_str(), m.id, ifindex);
  }

  // No flags: the kernel picks native (driver) mode when the driver has it (veth does).
  p->link_ = bpf_program__attach_xdp(prog, ifindex);
  if (p->link_ == nullptr) return unexpected(err("attach as bpf_link to ifindex " + std::to_string(ifindex), errno));

  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0) p->prog_id_ = info.id;
  return p;
}

XdpProgram::~XdpProgram() {
  if (link_ != nullptr) bpf_link__destroy(link_);
  if (obj_ != nullptr) bpf_object__close(obj_);
}

Status<std::string> XdpProgram::add_flow(FlowProto proto, Ipv4Addr dst, uint16_t port, uint32_t slot) {
  if (slot != kSlotRxQueue && slot >= kMaxXskSlots) return unexpected(std::string("xdp program: slot out of range"));
  const xs_flow_key k = make_key(proto, dst, port);
  if (bpf_map_update_elem(flows_fd_, &k, &slot, BPF_ANY) != 0) return unexpected(err("add flow", errno));
  return {};
}

Status<std::string> XdpProgram::remove_flow(FlowProto proto, Ipv4Addr dst, uint16_t port) {
  const xs_flow_key k = make_key(proto, dst, port);
  if (bpf_map_delete_elem(flows_fd_, &k) != 0) return unexpected(err("remove flow", errno));
  return {};
}

Status<std::string> XdpProgram::set_socket(uint32_t slot, int xsk_fd) {
  if (slot >= kMaxXskSlots) return unexpected(std::string("xdp program: slot out of range"));
  const uint32_t fd = uint32_t(xsk_fd);
  if (bpf_map_update_elem(xsks_fd_, &slot, &fd, BPF_ANY) != 0) return unexpected(err("XSKMAP update", errno));
  return {};
}

Status<std::string> XdpProgram::clear_socket(uint32_t slot) {
  if (bpf_map_delete_elem(xsks_fd_, &slot) != 0 && errno != ENOENT) return unexpected(err("XSKMAP delete", errno));
  return {};
}

XdpProgramStats XdpProgram::stats() const {
  XdpProgramStats s;
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return s;
  std::vector<uint64_t> v(size_t(ncpu), 0);
  auto sum = [&](uint32_t idx) {
    uint64_t total = 0;
    if (bpf_map_lookup_elem(stats_fd_, &idx, v.data()) == 0) {
      for (uint64_t x : v) total += x;
    }
    return total;
  };
  s.redirected = sum(XS_STAT_REDIRECT);
  s.passed = sum(XS_STAT_PASS);
  s.short_frames = sum(XS_STAT_SHORT);
  return s;
}

}  // namespace xs
