# Install-time, before any file is installed: which directories will this install create?
# Their list goes into the manifest (install_end.cmake), so uninstall can remove them again
# and nothing that existed before.
function(secho_full out rel)
    if(IS_ABSOLUTE "${rel}")
        set(p "${rel}")
    else()
        set(p "${CMAKE_INSTALL_PREFIX}/${rel}")
    endif()
    set(${out} "${p}" PARENT_SCOPE)
endfunction()

set(SECHO_NEW_DIRS "")
foreach(rel ${SECHO_INSTALL_DIRS})
    secho_full(dir "${rel}")
    # Walk up from the directory to the first one that exists.
    while(NOT EXISTS "$ENV{DESTDIR}${dir}" AND NOT dir STREQUAL "/" AND NOT dir STREQUAL "")
        list(APPEND SECHO_NEW_DIRS "${dir}")
        get_filename_component(dir "${dir}" DIRECTORY)
    endwhile()
endforeach()
list(REMOVE_DUPLICATES SECHO_NEW_DIRS)
