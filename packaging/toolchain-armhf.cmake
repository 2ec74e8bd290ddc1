# CMake toolchain file: cross-build for Debian armhf (multiarch -dev packages), tests run under qemu-user.
# Use: cmake -S . -B build-armhf -DCMAKE_TOOLCHAIN_FILE=packaging/toolchain-armhf.cmake
# Needs packaging/install-cross-deps.sh (crossbuild-essential-armhf, pkgconf:armhf,
# the -dev:armhf libraries, qemu-user).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR arm)
set(CMAKE_LIBRARY_ARCHITECTURE arm-linux-gnueabihf)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)

# The target's .pc files (/usr/lib/arm-linux-gnueabihf/pkgconfig), through
# pkgconf's cross personality (pkgconf:armhf).
set(PKG_CONFIG_EXECUTABLE /usr/bin/arm-linux-gnueabihf-pkg-config
    CACHE FILEPATH "pkg-config for armhf")

# Test programs (add_test(NAME x COMMAND <target>)) run through qemu-user;
# libc6:armhf from multiarch supplies the dynamic loader, so no -L is needed.
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/bin/qemu-arm)

# Libraries and headers come from the host's multiarch directories, which
# the cross compiler searches by itself; programs (clang-format, python3)
# are the build machine's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
