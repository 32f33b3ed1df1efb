# Install-time, after the binary and the man page: the systemd units, with ExecStart=
# naming the binary where it was installed (the prefix as given now, without DESTDIR), then
# the manifest.
secho_full(bindir "${SECHO_BINDIR_REL}")
secho_full(unitdir "${SECHO_SYSTEMD_UNITDIR}")
file(MAKE_DIRECTORY "${SECHO_UNIT_STAGING}")
file(GLOB units "${SECHO_UNIT_SOURCES}/*.service" "${SECHO_UNIT_SOURCES}/*.socket")
foreach(src ${units})
    get_filename_component(name "${src}" NAME)
    file(READ "${src}" text)
    string(REPLACE "@SECHO_BINDIR@" "${bindir}" text "${text}")
    file(WRITE "${SECHO_UNIT_STAGING}/${name}" "${text}")
    file(INSTALL DESTINATION "${unitdir}" TYPE FILE PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
         WORLD_READ FILES "${SECHO_UNIT_STAGING}/${name}")
endforeach()

# The manifest: every file installed and every directory created, without DESTDIR, one per
# line (directories end in "/"). Merged with the one of an earlier install to the same
# place, so that reinstalling keeps the directories the first install created.
secho_full(datadir "share/secho")
set(manifest "$ENV{DESTDIR}${datadir}/install_manifest.txt")
set(entries "")
if(EXISTS "${manifest}")
    file(STRINGS "${manifest}" entries)
endif()
# CMake lists the files without DESTDIR (some versions with it: then it is taken off).
string(LENGTH "$ENV{DESTDIR}" dlen)
foreach(f ${CMAKE_INSTALL_MANIFEST_FILES})
    if(dlen GREATER 0)
        string(FIND "${f}" "$ENV{DESTDIR}/" at)
        if(at EQUAL 0)
            string(SUBSTRING "${f}" ${dlen} -1 f)
        endif()
    endif()
    list(APPEND entries "${f}")
endforeach()
foreach(d ${SECHO_NEW_DIRS})
    list(APPEND entries "${d}/")
endforeach()
list(REMOVE_DUPLICATES entries)
list(SORT entries)
list(JOIN entries "\n" text)
file(MAKE_DIRECTORY "$ENV{DESTDIR}${datadir}")
file(WRITE "${manifest}" "${text}\n")
message(STATUS "Manifest: ${manifest} (make uninstall removes what it lists)")
