# Unit tests: one binary per file tests/unit/test_*.c, each a CTest test labelled "unit".
file(GLOB SECHO_UNIT_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/unit/test_*.c)
foreach(src ${SECHO_UNIT_TESTS})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/unit)
    target_link_libraries(${name} PRIVATE secho_core)
    add_test(NAME unit.${name} COMMAND ${name})
    set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 300
        ENVIRONMENT "SECHO_VECTORS=${SECHO_SHARED_DIR};SECHO_SOURCE=${CMAKE_SOURCE_DIR}")
endforeach()

# End-to-end tests: Python unittest modules tests/e2e/test_*.py driving the real binary.
find_program(SECHO_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT SECHO_PYTHON)
    find_program(SECHO_PYTHON NAMES python3 REQUIRED)
endif()
file(GLOB SECHO_E2E_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/test_*.py)
foreach(src ${SECHO_E2E_TESTS})
    get_filename_component(name ${src} NAME_WE)
    add_test(NAME e2e.${name}
        COMMAND ${SECHO_PYTHON} -m unittest -v ${name}
        WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/e2e)
    set_tests_properties(e2e.${name} PROPERTIES LABELS "e2e;tsan" TIMEOUT 900
        ENVIRONMENT "SECHO_BIN=$<TARGET_FILE:secho>;SECHO_VECTORS=${SECHO_SHARED_DIR};SECHO_SOURCE=${CMAKE_SOURCE_DIR};SECHO_SANITIZER=${SECHO_SANITIZER_NAME}")
endforeach()

# Layering: the layer libraries reference only downward and no two files call each other
# (tests/layering/check_layers.py reads the objects with nm); and the check's own test.
set(SECHO_LAYER_ARGS "")
foreach(layer ${SECHO_LAYERS})
    list(APPEND SECHO_LAYER_ARGS "${layer}=$<TARGET_FILE:secho_${layer}>")
endforeach()
add_test(NAME layering.check
    COMMAND ${SECHO_PYTHON} ${CMAKE_SOURCE_DIR}/tests/layering/check_layers.py
            --nm ${CMAKE_NM}
            ${SECHO_LAYER_ARGS})
add_test(NAME layering.selftest
    COMMAND ${SECHO_PYTHON} -m unittest -v test_check_layers
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/layering)
set_tests_properties(layering.check layering.selftest PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "CC=${CMAKE_C_COMPILER}")

# Hardening: the release program is PIE with full RELRO, the stack protector, FORTIFY and CET
# (tests/hardening/check_hardening.py reads it with readelf); and the check's own test. Only
# where CMakeLists.txt turns FORTIFY on: optimised builds without sanitizers or fuzzers.
if(SECHO_FORTIFY)
    if(NOT CMAKE_READELF)
        find_program(CMAKE_READELF NAMES readelf REQUIRED)
    endif()
    set(SECHO_HARDENING_OBJECTS "")
    foreach(layer ${SECHO_LAYERS})
        list(APPEND SECHO_HARDENING_OBJECTS "$<TARGET_FILE:secho_${layer}>")
    endforeach()
    add_test(NAME hardening.check
        COMMAND ${SECHO_PYTHON} ${CMAKE_SOURCE_DIR}/tests/hardening/check_hardening.py
                --readelf ${CMAKE_READELF} --cc ${CMAKE_C_COMPILER}
                $<TARGET_FILE:secho> $<TARGET_OBJECTS:secho> ${SECHO_HARDENING_OBJECTS})
    add_test(NAME hardening.selftest
        COMMAND ${SECHO_PYTHON} -m unittest -v test_check_hardening
        WORKING_DIRECTORY ${CMAKE_SOURCE_DIR}/tests/hardening)
    set_tests_properties(hardening.check hardening.selftest PROPERTIES LABELS unit TIMEOUT 120
        ENVIRONMENT "CC=${CMAKE_C_COMPILER}")
endif()

# Stress (stress/, issue #10): the reduced form of `make stress` (the same scenarios and
# verdicts at small counts, about two minutes) and valgrind memcheck over the client and
# keygen (about twenty seconds). Only in a build without sanitizers or fuzzers: the RSS,
# CPU and timing bounds hold for the program as shipped, and valgrind cannot run an ASan
# or TSan binary. RUN_SERIAL: the timing verdicts want the machine to themselves.
if(NOT SECHO_SANITIZER_NAME AND NOT SECHO_FUZZ)
    add_test(NAME stress.small
        COMMAND ${SECHO_PYTHON} ${CMAKE_SOURCE_DIR}/stress/stress.py --scale small
                --secho $<TARGET_FILE:secho>)
    set_tests_properties(stress.small PROPERTIES LABELS stress TIMEOUT 600 RUN_SERIAL ON
        ENVIRONMENT "SECHO_VECTORS=${SECHO_SHARED_DIR};SECHO_SOURCE=${CMAKE_SOURCE_DIR}")
    find_program(SECHO_VALGRIND NAMES valgrind)
    if(SECHO_VALGRIND)
        add_test(NAME stress.valgrind
            COMMAND ${SECHO_PYTHON} ${CMAKE_SOURCE_DIR}/stress/valgrind.py
                    --secho $<TARGET_FILE:secho> --valgrind ${SECHO_VALGRIND})
        set_tests_properties(stress.valgrind PROPERTIES LABELS stress TIMEOUT 300)
    else()
        message(WARNING "valgrind not found: stress.valgrind is not registered")
    endif()
endif()
