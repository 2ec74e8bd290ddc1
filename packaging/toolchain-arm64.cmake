# CMake toolchain file: cross-build for Debian arm64 (multiarch -dev packages), tests run under qemu-user.
# Use: cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=packaging/toolchain-arm64.cmake
# Needs packaging/install-cross-deps.sh (crossbuild-essential-arm64, pkgconf:arm64,
# the -dev:arm64 libraries, qemu-user).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)

# The target's .pc files (/usr/lib/aarch64-linux-gnu/pkgconfig), through
# pkgconf's cross personality (pkgconf:arm64).
set(PKG_CONFIG_EXECUTABLE /usr/bin/aarch64-linux-gnu-pkg-config
    CACHE FILEPATH "pkg-config for arm64")

# Test programs (add_test(NAME x COMMAND <target>)) run through qemu-user;
# libc6:arm64 from multiarch supplies the dynamic loader, so no -L is needed.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-aarch64)

# Libraries and headers come from the host's multiarch directories, which
# the cross compiler searches by itself; programs (clang-format, python3)
# are the build machine's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
