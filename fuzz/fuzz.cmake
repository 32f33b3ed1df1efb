# libFuzzer targets (clang only): -DSECHO_FUZZ=ON -DCMAKE_C_COMPILER=clang.
# The layer libraries are instrumented for coverage (fuzzer-no-link) and ASan; each target links the
# fuzzer runtime. Run e.g. ./fuzz_secure_server -max_total_time=60
if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SECHO_FUZZ needs clang (-DCMAKE_C_COMPILER=clang)")
endif()

foreach(lib ${SECHO_LAYER_LIBS})
    target_compile_options(${lib} PRIVATE -fsanitize=fuzzer-no-link,address -fno-omit-frame-pointer)
    # Everything that links the instrumented libraries needs the ASan runtime.
    target_link_options(${lib} INTERFACE -fsanitize=address)
endforeach()

file(GLOB SECHO_FUZZERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/fuzz_*.c)
foreach(src ${SECHO_FUZZERS})
    get_filename_component(name ${src} NAME_WE)
    add_executable(${name} ${src})
    target_compile_options(${name} PRIVATE -fsanitize=fuzzer,address -fno-omit-frame-pointer)
    target_link_options(${name} PRIVATE -fsanitize=fuzzer,address)
    target_link_libraries(${name} PRIVATE secho_core)
endforeach()
