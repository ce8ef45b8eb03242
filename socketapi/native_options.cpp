#include "socketapi/native_internal.hpp"

#include <net/if.h>

namespace xs::native {

namespace {

// The kernel keeps SO_RCVTIMEO/SO_SNDTIMEO in jiffies (sock_set_timeout
// rounds the microseconds up to a tick; getsockopt reads the ticks back).
// The tick is CONFIG_HZ, which no interface reports: a scratch kernel socket
// set to 1 us reads back exactly one tick. 0 when that cannot be learned
// (the timeout is then kept to the microsecond).
int64_t kernel_tick_us() {
  static const int64_t tick = [] {
    int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return int64_t{0};
    timeval tv{0, 1};
    socklen_t len = sizeof tv;
    int64_t us = 0;
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
        ::getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0 && tv.tv_sec == 0 && tv.tv_usec > 0 &&
        1000000 % tv.tv_usec == 0)
      us = tv.tv_usec;
    ::close(fd);
    return us;
  }();
  return tick;
}

// TCP_DEFER_ACCEPT rounding (Linux secs_to_retrans / retrans_to_secs).
uint8_t secs_to_retrans(int seconds, int timeout, int rto_max) {
  uint8_t res = 0;
  if (seconds > 0) {
    int period = timeout;
    res = 1;
    while (seconds > period && res < 255) {
      res++;
      timeout <<= 1;
      if (timeout > rto_max) timeout = rto_max;
      period += timeout;
    }
  }
  return res;
}
int retrans_to_secs(uint8_t retrans, int timeout, int rto_max) {
  int period = 0;
  if (retrans > 0) {
    period = timeout;
    while (--retrans) {
      timeout <<= 1;
      if (timeout > rto_max) timeout = rto_max;
      period += timeout;
    }
  }
  return period;
}

// struct tcp_info as <linux/tcp.h> lays it out (glibc's <netinet/tcp.h>
// copy stops at tcpi_total_retrans, and the two headers cannot be mixed).
struct LinuxTcpInfo {
  uint8_t tcpi_state, tcpi_ca_state, tcpi_retransmits, tcpi_probes, tcpi_backoff, tcpi_options;
  uint8_t tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4;
  uint8_t tcpi_delivery_rate_app_limited : 1, tcpi_fastopen_client_fail : 2;
  uint32_t tcpi_rto, tcpi_ato, tcpi_snd_mss, tcpi_rcv_mss;
  uint32_t tcpi_unacked, tcpi_sacked, tcpi_lost, tcpi_retrans, tcpi_fackets;
  uint32_t tcpi_last_data_sent, tcpi_last_ack_sent, tcpi_last_data_recv, tcpi_last_ack_recv;
  uint32_t tcpi_pmtu, tcpi_rcv_ssthresh, tcpi_rtt, tcpi_rttvar, tcpi_snd_ssthresh, tcpi_snd_cwnd, tcpi_advmss,
      tcpi_reordering;
  uint32_t tcpi_rcv_rtt, tcpi_rcv_space;
  uint32_t tcpi_total_retrans;
  uint64_t tcpi_pacing_rate, tcpi_max_pacing_rate, tcpi_bytes_acked, tcpi_bytes_received;
  uint32_t tcpi_segs_out, tcpi_segs_in;
  uint32_t tcpi_notsent_bytes, tcpi_min_rtt, tcpi_data_segs_in, tcpi_data_segs_out;
  uint64_t tcpi_delivery_rate;
  uint64_t tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited;
  uint32_t tcpi_delivered, tcpi_delivered_ce;
  uint64_t tcpi_bytes_sent, tcpi_bytes_retrans;
  uint32_t tcpi_dsack_dups, tcpi_reord_seen;
  uint32_t tcpi_rcv_ooopack;
  uint32_t tcpi_snd_wnd;
  uint32_t tcpi_rcv_wnd;
  uint32_t tcpi_rehash;  // IPv6 flow-label rehashes: always 0 on IPv4
  // Linux 6.7+ continues with tcpi_total_rto* and the AccECN counters (to
  // 280 bytes); not kept here, so a caller asking for more gets 240 bytes,
  // as an older kernel answers.
};
static_assert(sizeof(LinuxTcpInfo) == 240);
static_assert(offsetof(LinuxTcpInfo, tcpi_rto) == 8);
static_assert(offsetof(LinuxTcpInfo, tcpi_pacing_rate) == 104);

// rt_tos2priority: the priority band Linux gives a socket when IP_TOS changes.
int tos_to_priority(int tos) {
  static constexpr uint8_t kBand[16] = {0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4};
  return kBand[(tos & 0x1E) >> 1];
}

}  // namespace

// ---- options ----------------------------------------------------------------------

int Runtime::setsockopt(int fd, int level, int name, const void* val, socklen_t len) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (static_cast<int>(len) < 0) return fail(EINVAL);
  TcpSocket* t = o->tcp;
  UdpSocket* u = o->udp;
  Instant now = Engine::clock_now();
  int iv = 0;
  // Options taking an int: Linux wants at least sizeof(int) bytes.
  auto get_int = [&]() -> int {
    if (len < sizeof(int)) return EINVAL;
    if (val == nullptr) return EFAULT;
    std::memcpy(&iv, val, sizeof iv);
    return 0;
  };
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_BINDTODEVICE: {
        // sock_setbindtodevice: the name is at most IFNAMSIZ-1 bytes; an empty
        // one (or optlen 0) unbinds, which for a socket never bound is done.
        // Binding to a device is not implemented: ENOPROTOOPT, not ignored.
        char dev[IFNAMSIZ] = {};
        size_t n = std::min<size_t>(len, IFNAMSIZ - 1);
        if (n > 0 && val == nullptr) return fail(EFAULT);
        if (n > 0) std::memcpy(dev, val, n);
        return dev[0] == '\0' ? 0 : fail(ENOPROTOOPT);
      }
      case SO_LINGER: {
        if (len < sizeof(linger)) return fail(EINVAL);
        if (val == nullptr) return fail(EFAULT);
        linger l;
        std::memcpy(&l, val, sizeof l);
        o->linger_on = l.l_onoff != 0;
        o->linger_s = l.l_linger;
        if (t) {
          t->options().linger_on = o->linger_on;
          t->options().linger_seconds = l.l_linger;
        }
        return 0;
      }
      case SO_RCVTIMEO:
      case SO_SNDTIMEO: {
        if (len < sizeof(timeval)) return fail(EINVAL);
        if (val == nullptr) return fail(EFAULT);
        timeval tv;
        std::memcpy(&tv, val, sizeof tv);
        if (tv.tv_usec < 0 || tv.tv_usec >= 1000000) return fail(EDOM);
        Duration d{0};
        if (tv.tv_sec >= 0) {
          int64_t us = tv.tv_usec;
          if (int64_t tick = kernel_tick_us(); tick > 0) us = (us + tick - 1) / tick * tick;
          d = Duration{int64_t(tv.tv_sec) * 1000000 + us};
        } else {
          d = Duration{-1};  // negative: do not wait at all (Linux sets 0 jiffies)
        }
        (name == SO_RCVTIMEO ? o->rcvtimeo : o->sndtimeo) = d;
        return 0;
      }
      case kSoTimestampOld:
      case kSoTimestampNsOld:
      case kSoTimestampNew:
      case kSoTimestampNsNew:
        // Receive timestamps as ancillary data (native_cmsg.hpp).
        if (int e = get_int()) return fail(e);
        o->cm.set_timestamp(name, iv != 0);
        return 0;
      case SO_PEEK_OFF:
        // sk_set_peek_off (TCP and UDP): stored as given, negative is off.
        if (int e = get_int()) return fail(e);
        o->peek_off = iv;
        return 0;
      case SO_REUSEADDR:
      case SO_REUSEPORT:
      case SO_KEEPALIVE:
      case SO_RCVBUF:
      case SO_SNDBUF:
      case SO_RCVLOWAT:
      case SO_PRIORITY:
      case SO_OOBINLINE:
      case SO_BROADCAST: {
        if (int e = get_int()) return fail(e);
        if (name == SO_PRIORITY) {
          // sk_setsockopt: 0..6 for anyone, any value with CAP_NET_ADMIN.
          if ((iv < 0 || iv > 6) && geteuid() != 0) return fail(EPERM);
          o->priority = iv;
          return 0;
        }
        bool on = iv != 0;
        switch (name) {
          case SO_REUSEADDR:
            if (t) t->options().reuseaddr = on;
            else u->set_reuseaddr(on);
            break;
          case SO_REUSEPORT:
            if (t) t->options().reuseport = on;
            else u->set_reuseport(on);
            break;
          case SO_KEEPALIVE:
            o->keepalive = on;
            if (t) t->set_keepalive(now, on);
            break;
          case SO_RCVBUF:
            o->rcvbuf_set = true;
            if (t) t->set_rcvbuf(static_cast<uint32_t>(iv));
            else u->set_rcvbuf(static_cast<uint32_t>(iv));
            break;
          case SO_SNDBUF:
            if (t) t->set_sndbuf(static_cast<uint32_t>(iv));
            else u->set_sndbuf(static_cast<uint32_t>(iv));
            break;
          case SO_RCVLOWAT: {
            int v = iv < 0 ? INT_MAX : iv;
            // tcp_set_rcvlowat: at most half the buffer (a locked SO_RCVBUF, else tcp_rmem[2]).
            if (t) v = std::min<int>(v, static_cast<int>((o->rcvbuf_set ? t->rcvbuf() : e_.config().tcp.rmem_max) / 2));
            o->rcvlowat = v ? v : 1;
            if (t) t->options().rcvlowat = static_cast<uint32_t>(o->rcvlowat);
            break;
          }
          case SO_BROADCAST:
            o->broadcast = on;
            if (u) u->set_broadcast(on);
            break;
          case SO_OOBINLINE:  // sock_valbool_flag(SOCK_URGINLINE); any socket type
            if (t) t->options().oobinline = on;
            else o->oobinline = on;
            break;
        }
        if (t) e_.after_call_locked();
        signal_locked(*o, 0);
        kick_locked();
        return 0;
      }
      default: return fail(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_TCP) {
    if (!t) return fail(ENOPROTOOPT);
    if (name == TCP_CONGESTION) {
      if (len < 1) return fail(EINVAL);
      if (val == nullptr) return fail(EFAULT);
      const char* s = static_cast<const char*>(val);
      std::string cc(s, strnlen(s, std::min<size_t>(len, 15)));
      if (auto r = t->set_congestion(now, cc); !r) return fail(to_errno(r.error()));
      return 0;
    }
    switch (name) {
      case TCP_NODELAY:
      case TCP_CORK:
      case TCP_MAXSEG:
      case TCP_DEFER_ACCEPT:
      case TCP_QUICKACK:
      case TCP_USER_TIMEOUT:
      case TCP_KEEPIDLE:
      case TCP_KEEPINTVL:
      case TCP_KEEPCNT:
      case TCP_SYNCNT:
      case TCP_LINGER2:
      case TCP_NOTSENT_LOWAT:
      case TCP_WINDOW_CLAMP: break;
      default: return fail(ENOPROTOOPT);
    }
    if (int e = get_int()) return fail(e);
    switch (name) {
      case TCP_NODELAY: t->set_nodelay(now, iv != 0); break;
      case TCP_CORK: t->set_cork(now, iv != 0); break;
      case TCP_MAXSEG:
        if (auto r = t->set_maxseg(static_cast<uint32_t>(iv)); !r) return fail(to_errno(r.error()));
        break;
      case TCP_DEFER_ACCEPT:
        t->options().defer_accept = seconds(retrans_to_secs(secs_to_retrans(iv, 1, 120), 1, 120));
        break;
      case TCP_QUICKACK: t->set_quickack(now, iv); break;
      case TCP_USER_TIMEOUT:
        if (iv < 0) return fail(EINVAL);
        t->options().user_timeout = millis(iv);
        break;
      case TCP_KEEPIDLE:
      case TCP_KEEPINTVL:
        if (iv < 1 || iv > 32767) return fail(EINVAL);
        (name == TCP_KEEPIDLE ? t->options().keep_idle : t->options().keep_interval) = seconds(iv);
        if (t->options().keepalive) t->set_keepalive(now, true);  // re-arm with the new time
        break;
      case TCP_KEEPCNT:
        if (iv < 1 || iv > 127) return fail(EINVAL);
        t->options().keep_count = static_cast<uint32_t>(iv);
        break;
      case TCP_SYNCNT:
        if (iv < 1 || iv > 127) return fail(EINVAL);
        t->options().syn_count = static_cast<uint32_t>(iv);
        break;
      case TCP_LINGER2:
        // do_tcp_setsockopt: < 0 is -1 (reset at close), above
        // TCP_FIN_TIMEOUT_MAX (120 s) clamped, 0 back to tcp_fin_timeout.
        t->options().linger2 = iv < 0 ? -1 : std::min(iv, 120);
        break;
      case TCP_NOTSENT_LOWAT:
        t->set_notsent_lowat(static_cast<uint32_t>(iv));  // a u32: -1 is no limit, read back as -1
        break;
      case TCP_WINDOW_CLAMP:
        if (auto r = t->set_window_clamp(iv); !r) return fail(to_errno(r.error()));
        break;
    }
    e_.after_call_locked();
    return 0;
  }
  if (level == IPPROTO_IP) {
    const bool recv_flag =
        name == IP_PKTINFO || name == IP_RECVTTL || name == IP_RECVTOS || name == IP_RECVORIGDSTADDR;
    if (name != IP_TOS && name != IP_TTL && name != IP_MTU_DISCOVER && !recv_flag) return fail(ENOPROTOOPT);
    // ip_setsockopt: an int, or a single byte when shorter.
    if (len >= sizeof(int)) {
      if (val == nullptr) return fail(EFAULT);
      std::memcpy(&iv, val, sizeof iv);
    } else if (len >= 1) {
      if (val == nullptr) return fail(EFAULT);
      iv = *static_cast<const unsigned char*>(val);
    }
    if (name == IP_MTU_DISCOVER) {
      // ip_setsockopt: IP_PMTUDISC_DONT (0) ... IP_PMTUDISC_OMIT (5).
      if (len < 1) return fail(EINVAL);
      if (iv < IP_PMTUDISC_DONT || iv > IP_PMTUDISC_OMIT) return fail(EINVAL);
      if (t) t->options().pmtudisc = static_cast<uint8_t>(iv);
      else u->set_pmtudisc(static_cast<uint8_t>(iv));
      return 0;
    }
    if (recv_flag) {
      // Ancillary data for recvmsg (native_cmsg.hpp); any length, 0 bytes
      // meaning off, as ip_setsockopt. TCP keeps them and delivers none.
      const bool on = iv != 0;
      switch (name) {
        case IP_PKTINFO:
          o->cm.pktinfo = on;
          if (u) u->set_recv_pktinfo(on);  // datagrams queued from now on record it
          break;
        case IP_RECVTTL: o->cm.ttl = on; break;
        case IP_RECVTOS: o->cm.tos = on; break;
        default: o->cm.origdst = on; break;
      }
      return 0;
    }
    if (name == IP_TOS) {
      int old = t ? t->options().tos : u->tos();
      if ((old & ~3) != (iv & ~3)) o->priority = tos_to_priority(iv);
      if (t) {
        // Stream sockets keep the ECN bits to TCP itself.
        uint8_t tos = static_cast<uint8_t>((iv & ~3) | (t->options().tos & 3));
        t->options().tos = tos;
      } else {
        u->set_tos(static_cast<uint8_t>(iv));
      }
      return 0;
    }
    if (len < 1) return fail(EINVAL);
    if (iv != -1 && (iv < 1 || iv > 255)) return fail(EINVAL);
    if (t) t->options().ttl = iv == -1 ? 0 : static_cast<uint8_t>(iv);
    else (void)u->set_ttl(iv);
    return 0;
  }
  if (level == IPPROTO_IPV6 && o->inet6) {
    // do_ipv6_setsockopt: an int of at least sizeof(int) bytes. The socket
    // carries IPv4 only (native_internal.hpp), so the traffic class and hop
    // limit, which mark IPv6 packets, are kept and reported, as Linux does
    // for a dual-stack socket's IPv4 traffic.
    if (name != IPV6_V6ONLY && name != IPV6_TCLASS && name != IPV6_UNICAST_HOPS) return fail(ENOPROTOOPT);
    if (len < sizeof(int)) return fail(EINVAL);
    if (int e = get_int()) return fail(e);
    if (name == IPV6_V6ONLY) {
      const bool bound = t ? (t->is_bound() || t->state() != TcpState::Closed) : u->local().port != 0;
      if (bound) return fail(EINVAL);  // inet_num set
      o->v6only = iv != 0;
      return 0;
    }
    if (iv < -1 || iv > 255) return fail(EINVAL);
    if (name == IPV6_UNICAST_HOPS) {
      o->unicast_hops = iv;
      return 0;
    }
    if (iv == -1) iv = 0;  // RFC 3542 section 6.5: the default class
    if (t) iv = (iv & ~3) | (o->tclass & 3);  // stream sockets keep the ECN bits to TCP
    o->tclass = iv;
    return 0;
  }
  if (level == XS_SOL_XSTACK && name == XS_ZC_RX_FRAMES) {
    if (int e = get_int()) return fail(e);
    if (t) t->set_zc_frames(iv != 0);
    else u->set_zc_frames(iv != 0);
    return 0;
  }
  return fail(ENOPROTOOPT);
}

int Runtime::getsockopt(int fd, int level, int name, void* val, socklen_t* len) {
  std::lock_guard<std::mutex> lk(e_.mutex());
  XS_SOCK_OR_FAIL(o, fd);
  if (len == nullptr) return fail(EFAULT);
  int ulen = static_cast<int>(*len);
  if (ulen < 0) return fail(EINVAL);
  TcpSocket* t = o->tcp;
  UdpSocket* u = o->udp;
  auto put = [&](const void* v, size_t n) -> int {
    size_t k = std::min<size_t>(static_cast<size_t>(ulen), n);
    if (k > 0 && val == nullptr) return fail(EFAULT);
    if (k > 0) std::memcpy(val, v, k);
    *len = static_cast<socklen_t>(k);
    return 0;
  };
  auto put_int = [&](int v) { return put(&v, sizeof v); };
  if (level == SOL_SOCKET) {
    switch (name) {
      case SO_TYPE: return put_int(t ? SOCK_STREAM : SOCK_DGRAM);
      case SO_PROTOCOL: return put_int(t ? IPPROTO_TCP : IPPROTO_UDP);
      case SO_DOMAIN: return put_int(o->inet6 ? AF_INET6 : AF_INET);
      case SO_ERROR: {
        auto e = t ? t->take_error() : u->take_error();
        o->gen++;
        return put_int(e ? to_errno(*e) : 0);
      }
      case SO_ACCEPTCONN: return put_int(t && t->state() == TcpState::Listen ? 1 : 0);
      case SO_REUSEADDR: return put_int(t ? t->options().reuseaddr : u->reuseaddr());
      case SO_REUSEPORT: return put_int(t ? t->options().reuseport : u->reuseport());
      case SO_KEEPALIVE: return put_int(t ? t->options().keepalive : o->keepalive);
      case SO_RCVBUF: return put_int(static_cast<int>(t ? t->rcvbuf() : u->rcvbuf()));
      case SO_SNDBUF: return put_int(static_cast<int>(t ? t->sndbuf() : u->sndbuf()));
      case SO_RCVLOWAT: return put_int(o->rcvlowat);
      case SO_PEEK_OFF: return put_int(o->peek_off);
      case SO_BROADCAST: return put_int(o->broadcast);
      case SO_OOBINLINE: return put_int(t ? t->options().oobinline : o->oobinline);
      case SO_PRIORITY: return put_int(o->priority);
      case SO_SNDLOWAT: return put_int(1);
      // sock_getbindtodevice: an unbound socket answers optlen 0 and copies
      // nothing, whatever the buffer (setsockopt never binds one here).
      case SO_BINDTODEVICE: return put("", 0);
      case kSoTimestampOld:
      case kSoTimestampNsOld:
      case kSoTimestampNew:
      case kSoTimestampNsNew: return put_int(o->cm.timestamp_reported(name) ? 1 : 0);  // Linux: fixed at 1, cannot be set (ENOPROTOOPT)
      case SO_LINGER: {
        linger l{};
        l.l_onoff = t ? t->options().linger_on : o->linger_on;
        l.l_linger = t ? t->options().linger_seconds : o->linger_s;
        return put(&l, sizeof l);
      }
      case SO_RCVTIMEO:
      case SO_SNDTIMEO: {
        Duration d = name == SO_RCVTIMEO ? o->rcvtimeo : o->sndtimeo;
        timeval tv{};
        if (d.us > 0) {
          tv.tv_sec = d.us / 1000000;
          tv.tv_usec = d.us % 1000000;
        }
        return put(&tv, sizeof tv);
      }
      default: return fail(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_TCP) {
    if (!t) return fail(EOPNOTSUPP);  // a level UDP does not handle
    const TcpConfig& cfg = e_.config().tcp;
    const TcpSocketOptions& op = t->options();
    switch (name) {
      case TCP_NODELAY: return put_int(op.nodelay);
      case TCP_CORK: return put_int(op.cork);
      case TCP_MAXSEG: return put_int(static_cast<int>(t->maxseg()));
      case TCP_DEFER_ACCEPT: return put_int(static_cast<int>(op.defer_accept.us / 1000000));
      case TCP_QUICKACK: return put_int(t->quickack());
      case TCP_USER_TIMEOUT: return put_int(static_cast<int>(op.user_timeout.millis()));
      case TCP_KEEPIDLE:
        return put_int(static_cast<int>((op.keep_idle.us ? op.keep_idle : cfg.keepalive_idle).us / 1000000));
      case TCP_KEEPINTVL:
        return put_int(
            static_cast<int>((op.keep_interval.us ? op.keep_interval : cfg.keepalive_interval).us / 1000000));
      case TCP_KEEPCNT: return put_int(static_cast<int>(op.keep_count ? op.keep_count : cfg.keepalive_probes));
      case TCP_SYNCNT: return put_int(static_cast<int>(op.syn_count ? op.syn_count : cfg.syn_retries));
      case TCP_LINGER2:  // tp->linger2 ?: tcp_fin_timeout, in seconds; -1 as is
        return put_int(op.linger2 ? op.linger2 : static_cast<int>(cfg.fin_wait2_timeout.us / 1000000));
      case TCP_NOTSENT_LOWAT: return put_int(static_cast<int>(op.notsent_lowat));
      case TCP_WINDOW_CLAMP: return put_int(static_cast<int>(t->window_clamp()));
      case TCP_FASTOPEN: return put_int(0);  // no TCP Fast Open (setting it: ENOPROTOOPT)
      case TCP_CONGESTION: {
        char nm[16] = {};
        auto cc = t->congestion();
        std::memcpy(nm, cc.data(), std::min<size_t>(cc.size(), 15));
        return put(nm, sizeof nm);
      }
      case TCP_INFO: {
        TcpInfo i = t->info(Engine::clock_now());
        LinuxTcpInfo ti{};
        // Linux moves a connection entering TIME_WAIT to a separate
        // time-wait sock: the application's socket itself reads CLOSE (7).
        ti.tcpi_state = t->state() == TcpState::TimeWait ? uint8_t{7} : i.state;
        ti.tcpi_ca_state = i.ca_state;
        ti.tcpi_retransmits = i.retransmits;
        ti.tcpi_probes = i.probes;
        ti.tcpi_backoff = i.backoff;
        ti.tcpi_options = i.options;
        ti.tcpi_snd_wscale = i.snd_wscale & 0xf;
        ti.tcpi_rcv_wscale = i.rcv_wscale & 0xf;
        ti.tcpi_rto = i.rto_us;
        ti.tcpi_ato = i.ato_us;
        ti.tcpi_snd_mss = i.snd_mss;
        ti.tcpi_rcv_mss = i.rcv_mss;
        ti.tcpi_unacked = i.unacked;
        ti.tcpi_sacked = i.sacked;
        ti.tcpi_lost = i.lost;
        ti.tcpi_retrans = i.retrans;
        ti.tcpi_last_data_sent = i.last_data_sent_ms;
        ti.tcpi_last_ack_sent = i.last_ack_sent_ms;
        ti.tcpi_last_data_recv = i.last_data_recv_ms;
        ti.tcpi_last_ack_recv = i.last_ack_recv_ms;
        ti.tcpi_pmtu = i.pmtu;
        ti.tcpi_rcv_ssthresh = i.rcv_ssthresh;
        ti.tcpi_rtt = i.rtt_us;
        ti.tcpi_rttvar = i.rttvar_us;
        ti.tcpi_snd_ssthresh = i.snd_ssthresh;
        ti.tcpi_snd_cwnd = i.snd_cwnd;
        ti.tcpi_advmss = i.advmss;
        ti.tcpi_reordering = i.reordering;
        ti.tcpi_rcv_rtt = i.rcv_rtt_us;
        ti.tcpi_rcv_space = i.rcv_space;
        ti.tcpi_total_retrans = i.total_retrans;
        ti.tcpi_bytes_acked = i.bytes_acked;
        ti.tcpi_bytes_received = i.bytes_received;
        ti.tcpi_segs_out = i.segs_out;
        ti.tcpi_segs_in = i.segs_in;
        ti.tcpi_notsent_bytes = i.notsent_bytes;
        ti.tcpi_min_rtt = i.min_rtt_us;
        ti.tcpi_data_segs_in = i.data_segs_in;
        ti.tcpi_data_segs_out = i.data_segs_out;
        ti.tcpi_delivery_rate = i.delivery_rate;
        ti.tcpi_bytes_sent = i.bytes_sent;
        ti.tcpi_bytes_retrans = i.bytes_retrans;
        ti.tcpi_dsack_dups = i.dsack_dups;
        ti.tcpi_reord_seen = i.reord_seen;
        ti.tcpi_rcv_ooopack = i.rcv_ooopack;
        ti.tcpi_snd_wnd = i.snd_wnd;
        ti.tcpi_rcv_wnd = i.rcv_wnd;
        return put(&ti, sizeof ti);
      }
      default: return fail(ENOPROTOOPT);
    }
  }
  if (level == IPPROTO_IP) {
    int v;
    if (name == IP_TOS) v = t ? t->options().tos : u->tos();
    else if (name == IP_TTL) v = t ? (t->options().ttl ? t->options().ttl : 64) : u->ttl();
    else if (name == IP_PKTINFO) v = o->cm.pktinfo;
    else if (name == IP_RECVTTL) v = o->cm.ttl;
    else if (name == IP_RECVTOS) v = o->cm.tos;
    else if (name == IP_RECVORIGDSTADDR) v = o->cm.origdst;
    else if (name == IP_MTU_DISCOVER) v = t ? t->options().pmtudisc : u->pmtudisc();
    // Multicast is not implemented (setting these on a used socket is
    // ENOPROTOOPT; a fresh one is handed to the kernel): reading them gives
    // Linux's defaults, which is what such a socket has.
    else if (name == IP_MULTICAST_TTL || name == IP_MULTICAST_LOOP || name == IP_MULTICAST_ALL) v = 1;
    else if (name == IP_MULTICAST_IF) {
      in_addr any{};  // inet->mc_addr; Linux copies at most an in_addr
      return put(&any, sizeof any);
    } else if (name == IP_MTU) {
      // The path MTU of the connected route; no route yet: ENOTCONN.
      bool routed = t ? (t->state() != TcpState::Closed && t->state() != TcpState::Listen) : u->remote().has_value();
      if (!routed) return fail(ENOTCONN);
      v = t ? static_cast<int>(t->info(Engine::clock_now()).pmtu) : static_cast<int>(e_.device_locked().mtu());
    } else {
      return fail(ENOPROTOOPT);
    }
    // ip_getsockopt: a short buffer gets one byte.
    if (ulen < static_cast<int>(sizeof(int)) && ulen > 0 && v >= 0 && v <= 255) {
      unsigned char c = static_cast<unsigned char>(v);
      return put(&c, 1);
    }
    return put_int(v);
  }
  if (level == IPPROTO_IPV6 && o->inet6) {
    // ipv6_getsockopt: min(len, sizeof(int)) bytes of an int. The hop
    // limit's default is the route's, 64 (net.ipv6.conf.all.hop_limit).
    int v;
    switch (name) {
      case IPV6_V6ONLY: v = o->v6only ? 1 : 0; break;
      case IPV6_TCLASS: v = o->tclass; break;
      case IPV6_UNICAST_HOPS: v = o->unicast_hops < 0 ? 64 : o->unicast_hops; break;
      default: return fail(ENOPROTOOPT);
    }
    return put_int(v);
  }
  if (level == XS_SOL_XSTACK) {
    if (name == XS_ZC_RX_FRAMES) return put_int((t ? t->zc_frames() : u->zc_frames()) ? 1 : 0);
    return fail(ENOPROTOOPT);
  }
  if (level == IPPROTO_UDP && u) return fail(ENOPROTOOPT);  // no IPPROTO_UDP option is implemented
  // A level the socket does not handle (IPPROTO_UDP on TCP, IPPROTO_IPV6 on AF_INET,
  // unknown): ip_getsockopt says EOPNOTSUPP, where ip_setsockopt says ENOPROTOOPT.
  return fail(EOPNOTSUPP);
}

}  // namespace xs::native
