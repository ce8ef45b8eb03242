// The namespace pair the C++ veth tests run in: xsx-<pid><tag>-a and -b,
// joined by veth va (198.18.0.1/24, in A) <-> vb (198.18.0.2/24, in B). The
// test thread moves into A; TearDown moves it back and deletes both
// namespaces (which removes the veth and any XDP program on it). Namespaces
// of earlier test processes that died without TearDown are reaped.
//
// Needs root. With CI=true a test that cannot run fails; elsewhere it skips.
#pragma once
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace xs::vethtest {

inline bool in_ci() {
  const char* v = getenv("CI");
  return v != nullptr && std::string(v) == "true";
}

// Runs a shell command; returns its exit status and fills *out with its output.
inline int sh(const std::string& cmd, std::string* out = nullptr) {
  FILE* f = popen((cmd + " 2>&1").c_str(), "r");
  if (f == nullptr) return -1;
  std::string text;
  char buf[512];
  while (fgets(buf, sizeof(buf), f) != nullptr) text += buf;
  const int st = pclose(f);
  if (out != nullptr) *out = text;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class NetnsPair : public ::testing::Test {
 protected:
  // `veth_opts` go after each veth end's name (e.g. queue counts); `extra`
  // commands run once the pair is up ("{a}"/"{b}" stand for the namespaces).
  void set_up_pair(const std::string& tag, const std::string& veth_opts, const std::vector<std::string>& extra) {
    if (geteuid() != 0) {
      if (in_ci()) FAIL() << "CI=true but not root: the veth tests cannot run";
      GTEST_SKIP() << "needs root (network namespaces)";
    }
    orig_ns_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(orig_ns_, 0);
    const std::string id = std::to_string(getpid());
    ns_a_ = "xsx-" + id + tag + "-a";
    ns_b_ = "xsx-" + id + tag + "-b";
    remove_namespaces();  // leftovers of an earlier run with the same pid
    reap_dead_runs();
    created_ = true;
    std::vector<std::string> cmds = {
        "ip netns add " + ns_a_,
        "ip netns add " + ns_b_,
        "ip link add va netns " + ns_a_ + " " + veth_opts + " type veth peer name vb netns " + ns_b_ + " " + veth_opts,
        "ip -n " + ns_a_ + " addr add 198.18.0.1/24 dev va",
        "ip -n " + ns_b_ + " addr add 198.18.0.2/24 dev vb",
        "ip -n " + ns_a_ + " link set lo up",
        "ip -n " + ns_b_ + " link set lo up",
        "ip -n " + ns_a_ + " link set va up",
        "ip -n " + ns_b_ + " link set vb up",
    };
    for (std::string c : extra) {
      for (auto [key, ns] : {std::pair<const char*, const std::string*>{"{a}", &ns_a_}, {"{b}", &ns_b_}}) {
        for (size_t p; (p = c.find(key)) != std::string::npos;) c.replace(p, 3, *ns);
      }
      cmds.push_back(c);
    }
    for (const auto& c : cmds) {
      std::string out;
      if (sh(c, &out) != 0) {
        if (in_ci()) FAIL() << "lab setup failed: " << c << ": " << out;
        GTEST_SKIP() << "lab setup failed (ip netns/veth unavailable?): " << c << ": " << out;
      }
    }
    fd_a_ = open(("/var/run/netns/" + ns_a_).c_str(), O_RDONLY | O_CLOEXEC);
    fd_b_ = open(("/var/run/netns/" + ns_b_).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd_a_, 0);
    ASSERT_GE(fd_b_, 0);
    // Only this thread moves; every socket it creates from here on lives in A.
    ASSERT_EQ(setns(fd_a_, CLONE_NEWNET), 0) << strerror(errno);
    ifindex_ = int(if_nametoindex("va"));
    ASSERT_GT(ifindex_, 0);
  }

  void TearDown() override {
    for (int fd : sockets_) close(fd);
    sockets_.clear();
    if (orig_ns_ >= 0) {
      setns(orig_ns_, CLONE_NEWNET);
      close(orig_ns_);
    }
    if (fd_a_ >= 0) close(fd_a_);
    if (fd_b_ >= 0) close(fd_b_);
    if (created_) remove_namespaces();
  }

  // Namespaces xsx-<pid>... of test processes that died without TearDown
  // (a crash, a timeout kill): delete them so they do not pile up.
  static void reap_dead_runs() {
    std::string list;
    sh("ip netns list", &list);
    size_t pos = 0;
    while ((pos = list.find("xsx-", pos)) != std::string::npos) {
      const size_t end = list.find_first_of(" \n", pos);
      const std::string name = list.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
      pos += 4;
      const long pid = strtol(name.c_str() + 4, nullptr, 10);
      if (pid > 0 && kill(pid_t(pid), 0) != 0 && errno == ESRCH) sh("ip netns del " + name);
    }
  }

  void remove_namespaces() {
    sh("ip netns del " + ns_a_);
    sh("ip netns del " + ns_b_);
  }

  int orig_ns_ = -1, fd_a_ = -1, fd_b_ = -1;
  int ifindex_ = 0;
  bool created_ = false;
  std::string ns_a_, ns_b_;
  std::vector<int> sockets_;
};

}  // namespace xs::vethtest
