# Cross build for 64-bit ARM (Raspberry Pi OS 64-bit, Debian arm64) with
# Debian's cross compiler (gcc-aarch64-linux-gnu) and the multiarch arm64 -dev
# packages (`dpkg --add-architecture arm64`). scripts/cross-aarch64.sh installs
# both and uses this file; ctest runs the test binaries under qemu-user.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(ES_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${ES_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${ES_CROSS_TRIPLE}-g++)

# Libraries and headers of the target only; programs (pkg-config, cmake) of
# the host.
set(CMAKE_FIND_ROOT_PATH /usr/${ES_CROSS_TRIPLE})
set(CMAKE_LIBRARY_ARCHITECTURE ${ES_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config must read the arm64 .pc files, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${ES_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# ctest, add_test and try_run run target programs through qemu-user. The
# multiarch libc6:arm64 (pulled in by the -dev packages) puts the arm64 loader
# at /lib/ld-linux-aarch64.so.1 and every library under /usr/lib/aarch64-linux-gnu,
# where the loader looks by itself: no sysroot (-L) needed.
find_program(ES_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static)
if(ES_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${ES_QEMU_AARCH64})
endif()
