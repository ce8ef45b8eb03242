#include "socketapi/private_fd.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace xs {

int private_fd_floor() {
  static const int floor = [] {
    rlimit rl{};
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 512;
    return static_cast<int>(std::min<rlim_t>(512, rl.rlim_cur / 2));
  }();
  return floor;
}

int move_fd_high(int fd) {
  const int floor = private_fd_floor();
  if (fd < 0 || fd >= floor) return fd;
  const int saved = errno;
  const int hi = ::fcntl(fd, F_DUPFD_CLOEXEC, floor);
  if (hi < 0) {
    errno = saved;
    return fd;
  }
  ::close(fd);
  return hi;
}

}  // namespace xs
