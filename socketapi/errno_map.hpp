// SockError -> the errno Linux returns for the same situation.
#pragma once
#include "stack/base/sock_error.hpp"

namespace xs {

int to_errno(SockError e);

}  // namespace xs
