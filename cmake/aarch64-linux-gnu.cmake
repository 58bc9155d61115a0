# Cross-compiling for aarch64 (the DGX Spark's Grace CPU) with Debian's gcc-aarch64-linux-gnu and
# the arm64 multiarch -dev packages (scripts/install-deps.sh --aarch64). Tests run under
# qemu-user-static as CTest's cross-compiling emulator (make check-aarch64).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static)
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")
# libhttp-parser-dev is not Multi-Arch (installing its :arm64 build removes the native one), so
# the cross build uses the native package's header, which is the same on every architecture, and
# links the arm64 runtime library directly.
set(HTTP_PARSER_INCLUDE /usr/include CACHE PATH "http_parser.h")
set(HTTP_PARSER_LIB /usr/lib/aarch64-linux-gnu/libhttp_parser.so.2.9 CACHE FILEPATH "arm64 libhttp_parser")
