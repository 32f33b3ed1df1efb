# `make install` / `cmake --install`: the binary, the man page and the systemd units, with a
# manifest of what was installed, so that `make uninstall` removes exactly that.
# Every path honours --prefix (read at install time) and DESTDIR (for packagers).
include(GNUInstallDirs)
set(SECHO_SYSTEMD_UNITDIR "lib/systemd/system" CACHE STRING
    "Where the systemd units go: relative to the prefix, or absolute")

# Read by the install-time scripts (they run inside cmake_install.cmake, in its scope).
install(CODE "set(SECHO_INSTALL_DIRS \"${CMAKE_INSTALL_BINDIR};${CMAKE_INSTALL_MANDIR}/man1;${SECHO_SYSTEMD_UNITDIR};share/secho\")
set(SECHO_SYSTEMD_UNITDIR \"${SECHO_SYSTEMD_UNITDIR}\")
set(SECHO_BINDIR_REL \"${CMAKE_INSTALL_BINDIR}\")
set(SECHO_UNIT_SOURCES \"${CMAKE_SOURCE_DIR}/contrib/systemd\")
set(SECHO_UNIT_STAGING \"${CMAKE_BINARY_DIR}/systemd-units\")")
# First: note the directories this install is about to create (uninstall removes those).
install(SCRIPT ${CMAKE_SOURCE_DIR}/cmake/install_begin.cmake)

install(TARGETS secho RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES secho.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

# Last: the units (ExecStart= names the installed binary) and the manifest.
install(SCRIPT ${CMAKE_SOURCE_DIR}/cmake/install_end.cmake)
