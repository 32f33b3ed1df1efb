# libFuzzer targets (clang only): -DSECHO_FUZZ=ON -DCMAKE_C_COMPILER=clang.
# The layer libraries are instrumented for coverage (fuzzer-no-link), ASan and UBSan (any
# undefined behaviour aborts, so libFuzzer keeps the input); each target links the fuzzer
# runtime. Run e.g. ./fuzz_secure_server -max_total_time=60 CORPUS_DIR fuzz/corpus/fuzz_secure_server
# (new inputs go to the first directory), or `make fuzz FUZZ_SECONDS=60` for all of them over
# a copy of their seeds.
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SECHO_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
endif()

set(SECHO_FUZZ_SAN -fsanitize=address,undefined -fno-sanitize-recover=undefined)
foreach(lib ${SECHO_LAYER_LIBS})
    target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link ${SECHO_FUZZ_SAN}
                           -fno-omit-frame-pointer)
    # Everything that links the instrumented libraries needs the sanitizer runtimes.
    target_link_options(${lib} INTERFACE ${SECHO_FUZZ_SAN})
endforeach()

file(GLOB SECHO_FUZZERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
foreach(src ${SECHO_FUZZERS})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer ${SECHO_FUZZ_SAN}
                           -fno-omit-frame-pointer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer ${SECHO_FUZZ_SAN})
    target_link_libraries(${name} PRIVATE secho_core)
endforeach()
