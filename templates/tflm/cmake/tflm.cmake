# tflm.cmake: builds TensorFlow Lite Micro (TFLM) as the static library `tflm`.
#
# Part of mncompile; copied verbatim into every generated TFLM firmware project.
# include() it after project(); the CPU flags come from the toolchain file
# (CMAKE_C_FLAGS / CMAKE_CXX_FLAGS), this module adds none.
#
# Inputs (cache variables, all optional):
#   TFLM_ROOT              a tflite-micro checkout. Empty: tflite-micro
#                          MNCOMPILE_TFLM_COMMIT and the third-party sources it
#                          pins are downloaded with FetchContent (needs internet).
#   TFLM_THIRD_PARTY_DIR   holds flatbuffers/, gemmlowp/, ruy/ (and cmsis/,
#                          cmsis_nn/ for CMSIS-NN) laid out as TFLM's Makefile
#                          downloads them. Empty: ${TFLM_ROOT}/tensorflow/lite/
#                          micro/tools/make/downloads.
#   CMSIS_NN_ROOT          a CMSIS-NN checkout. Set: build TFLM's CMSIS-NN kernel
#                          variants (kernels/cmsis_nn/*.cc replace the reference
#                          kernels of the same name) and the CMSIS-NN library.
#   MNCOMPILE_TFLM_CMSIS_NN  ON: CMSIS-NN kernels even without CMSIS_NN_ROOT
#                          (then ${TFLM_THIRD_PARTY_DIR}/cmsis_nn, or downloaded).
#   CMSIS_ROOT             CMSIS_6, for its Core headers. Empty:
#                          ${TFLM_THIRD_PARTY_DIR}/cmsis. CMSIS-NN itself does
#                          not need them (it has its own compiler header); they
#                          are added when present, as TFLM's Makefile does.
#   MNCOMPILE_TFLM_COMMIT  the tflite-micro commit downloaded when TFLM_ROOT is
#                          empty. The third-party pins (URL + MD5) are then read
#                          from that tree's tools/make/third_party_downloads.inc
#                          and ext_libs/cmsis*_download.sh, and the downloads are
#                          unpacked where TFLM's Makefile puts them
#                          (${FETCHCONTENT_BASE_DIR}/tflite_micro-src/tensorflow/
#                          lite/micro/tools/make/downloads/...), flatbuffers with
#                          TFLM's flatbuffers.patch applied. A stamp file per
#                          download makes later configure runs offline; with
#                          FETCHCONTENT_FULLY_DISCONNECTED=ON a download that is
#                          not there yet is a FATAL_ERROR, as is a failed one.
#                          Mirrors: -DMNCOMPILE_<X>_URL=... -DMNCOMPILE_<X>_MD5=...
#                          (empty MD5: unchecked), X = TFLM, FLATBUFFERS,
#                          GEMMLOWP, RUY, CMSIS, CMSIS_NN.
#   MNCOMPILE_TFLM_OPT     optimisation flag for the TFLM sources (-O2).
#
# Outputs:
#   tflm                    STATIC library; PUBLIC (SYSTEM) include directories
#                           and the definitions the application must share with
#                           it: TF_LITE_STATIC_MEMORY, TF_LITE_MCU_DEBUG_LOG,
#                           and CMSIS_NN, ARM_NN_ENABLE_F16=0, ARM_NN_ENABLE_F32=0
#                           with CMSIS-NN (kernel headers declare other
#                           registrations under CMSIS_NN).
#   MNCOMPILE_TFLM_KERNELS  "reference" or "cmsis-nn".
#   MNCOMPILE_TFLM_ROOT     the tflite-micro tree used (TFLM_ROOT or the download).
#
# Flags of the TFLM sources, as TFLM's Makefile uses them (tools/make/Makefile,
# targets/cortex_m_generic_makefile.inc): -std=c++17 / -std=c17, -fno-rtti
# -fno-exceptions -fno-threadsafe-statics, -fno-unwind-tables
# -fno-asynchronous-unwind-tables, -ffunction-sections -fdata-sections,
# -DTF_LITE_STATIC_MEMORY -DTF_LITE_DISABLE_X86_NEON -DTF_LITE_MCU_DEBUG_LOG
# -DKERNELS_OPTIMIZED_FOR_SPEED (the Makefile's default OPTIMIZE_KERNELS_FOR).
# Differences: one optimisation level (-O2) for everything, where the Makefile
# uses -Os for the core and -O2 for kernels and CMSIS-NN; TFLM's -Wall -Wextra
# set is not enabled, nor are the project's: warning options inherited from
# add_compile_options() are dropped for this target, -Wno-error is appended (so
# a -Werror in CMAKE_CXX_FLAGS does not apply either) and -Wno-psabi silences
# GCC's Arm ABI notes should another CPU/ABI give them. With GCC 12.2 TFLM and
# CMSIS-NN build without a single warning (cortex-m4/m7/m33/m55).
# The build type's flags (CMAKE_CXX_FLAGS_<CONFIG>, e.g. -DNDEBUG in Release)
# apply as to the rest of the project; the -O level is overridden by
# MNCOMPILE_TFLM_OPT, which comes after them on the command line.
#
# Source selection (derived from the tree by globbing, compared against
#   make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_generic \
#        TARGET_ARCH=cortex-m7 [OPTIMIZED_KERNEL_DIR=cmsis_nn] list_library_sources
# at tflite-micro 90b983c2b3f1, which lists 202 files; this module builds 156,
# = 202 - 41 (signal/) - 5 (test harness), with debug_log/micro_time swapped):
#   + tensorflow/**/*.{cc,c} outside tensorflow/lite/micro and
#     tensorflow/lite/experimental, less tensorflow/lite/array.cc (the
#     Makefile's TFL_CC_SRCS, same rule, same 13 files)
#   + tensorflow/lite/micro/{,arena_allocator/,memory_planner/,tflite_bridge/}*.cc
#   + tensorflow/lite/micro/kernels/*.cc (not recursive: the variant folders
#     cmsis_nn/, xtensa/, arc_mli/, ceva/, ethos_u/ and testdata/ stay out)
#   - *_test.cc, *_test_common.cc, *test_helper*, fake_*, mock_*, *benchmark*,
#     kernel_runner.cc, *_generated_data.cc, python/, testing/ (test support)
# Differences from the Makefile's list:
#   - the 41 signal/ sources (signal/micro/kernels, signal/src): audio front-end
#     ops that need kissfft, which a MobileNet never uses;
#   - fake_micro_context.cc, mock_micro_graph.cc, test_helpers.cc,
#     test_helper_custom_ops.cc, kernels/kernel_runner.cc: test harness code the
#     Makefile archives into the library, nothing outside tests references it;
#   - debug_log.cc and micro_time.cc are TFLM's defaults, not the
#     cortex_m_generic/ variants (those call a registered callback and read the
#     DWT/PMU through CMSIS Cortex_DFP headers). The default DebugLog() does
#     vfprintf(stderr, ...), which newlib's _write() sends to the board console;
#     the default micro_time returns 0 ticks (no profiling timer).
# With CMSIS-NN: the 14 kernels/cmsis_nn/*.cc replace the reference kernel of
# the same name (as TFLM's specialize_files.py does), plus CMSIS-NN's
# Source/**/*.c less *_f16.c, *_f32.c and arm_nntables_flt.c (float support
# off, as TFLM's ext_libs/cmsis_nn.inc defaults it): 113 files, the same list as
# the Makefile's list_third_party_sources.

cmake_minimum_required(VERSION 3.20)

if(TARGET tflm)
  # Included twice: the library exists already, only hand back the outputs.
  get_property(MNCOMPILE_TFLM_KERNELS TARGET tflm PROPERTY MNCOMPILE_TFLM_KERNELS)
  get_property(MNCOMPILE_TFLM_ROOT TARGET tflm PROPERTY MNCOMPILE_TFLM_ROOT)
  return()
endif()

set(TFLM_ROOT "" CACHE PATH
    "tflite-micro checkout (empty: download MNCOMPILE_TFLM_COMMIT with FetchContent)")
set(TFLM_THIRD_PARTY_DIR "" CACHE PATH
    "Folder with flatbuffers/, gemmlowp/, ruy/ (cmsis/, cmsis_nn/); empty: \${TFLM_ROOT}/tensorflow/lite/micro/tools/make/downloads")
set(CMSIS_NN_ROOT "" CACHE PATH
    "CMSIS-NN checkout; set: build TFLM's CMSIS-NN kernels")
set(CMSIS_ROOT "" CACHE PATH
    "CMSIS_6 checkout for the Core headers; empty: \${TFLM_THIRD_PARTY_DIR}/cmsis")
option(MNCOMPILE_TFLM_CMSIS_NN
       "Build TFLM's CMSIS-NN kernels (implied by a non-empty CMSIS_NN_ROOT)" OFF)
set(MNCOMPILE_TFLM_COMMIT "90b983c2b3f1480642e040bbd2ddb37b998f3424" CACHE STRING
    "tflite-micro commit downloaded when TFLM_ROOT is empty")
set(MNCOMPILE_TFLM_OPT "-O2" CACHE STRING "Optimisation flag for the TFLM sources")

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------

# _mncompile_tflm_require(<what> <dir> <relative file> <how to fix>...)
function(_mncompile_tflm_require what dir file)
  string(JOIN "" fix ${ARGN})
  if(NOT EXISTS "${dir}/${file}")
    message(FATAL_ERROR
      "mncompile/tflm.cmake: ${what} not found in '${dir}' "
      "(expected the file '${dir}/${file}').\n${fix}")
  endif()
endfunction()

# The pins TFLM's own download scripts use, read from the tree being built so
# that another MNCOMPILE_TFLM_COMMIT brings its own pins. The values after the
# regexes are the ones of tflite-micro 90b983c2b3f1, used if a file changed shape.
function(_mncompile_tflm_read_pins root)
  set(make_dir "${root}/tensorflow/lite/micro/tools/make")
  set(inc "")
  if(EXISTS "${make_dir}/third_party_downloads.inc")
    file(READ "${make_dir}/third_party_downloads.inc" inc)
  endif()
  set(defaults
    GEMMLOWP "https://github.com/google/gemmlowp/archive/719139ce755a0f31cbf1c37f7f98adcc7fc9f425.zip" "7e8191b24853d75de2af87622ad293ba"
    RUY "https://github.com/google/ruy/archive/d37128311b445e758136b8602d1bbd2a755e115d.zip" "abf7a91eb90d195f016ebe0be885bb6e"
    FLATBUFFERS "https://github.com/google/flatbuffers/archive/refs/tags/v25.9.23.zip" "023eca1e211d64007124420cd6be29c7")
  while(defaults)
    list(POP_FRONT defaults name url md5)
    if(inc MATCHES "${name}_URL[ \t:]*=[ \t]*\"([^\"]+)\"")
      set(url "${CMAKE_MATCH_1}")
    endif()
    if(inc MATCHES "${name}_MD5[ \t:]*=[ \t]*\"([0-9a-fA-F]+)\"")
      set(md5 "${CMAKE_MATCH_1}")
    endif()
    set(_mncompile_pin_${name}_URL "${url}" PARENT_SCOPE)
    set(_mncompile_pin_${name}_MD5 "${md5}" PARENT_SCOPE)
  endwhile()

  set(sh "")
  set(sha "5782d6f8057906d360f4b95ec08a2354afe5c9b9")
  set(md5 "563e7c6465f63bdc034359e9b536b366")
  if(EXISTS "${make_dir}/ext_libs/cmsis_download.sh")
    file(READ "${make_dir}/ext_libs/cmsis_download.sh" sh)
    # The first ZIP_PREFIX is CMSIS_6; the second one is Cortex_DFP (not needed).
    if(sh MATCHES "ZIP_PREFIX=\"([0-9a-f]+)\"")
      set(sha "${CMAKE_MATCH_1}")
    endif()
    if(sh MATCHES "CMSIS_MD5=\"([0-9a-fA-F]+)\"")
      set(md5 "${CMAKE_MATCH_1}")
    endif()
  endif()
  set(_mncompile_pin_CMSIS_URL "https://github.com/ARM-software/CMSIS_6/archive/${sha}.zip" PARENT_SCOPE)
  set(_mncompile_pin_CMSIS_MD5 "${md5}" PARENT_SCOPE)

  set(sh "")
  set(sha "4ab83cc3cc98fb85ed6dafb55e8ca02f1628dcae")
  set(md5 "c960031e7d10cf31c477fb34ef460106")
  if(EXISTS "${make_dir}/ext_libs/cmsis_nn_download.sh")
    file(READ "${make_dir}/ext_libs/cmsis_nn_download.sh" sh)
    if(sh MATCHES "ZIP_PREFIX_NN=\"([0-9a-f]+)\"")
      set(sha "${CMAKE_MATCH_1}")
    endif()
    if(sh MATCHES "CMSIS_NN_MD5=\"([0-9a-fA-F]+)\"")
      set(md5 "${CMAKE_MATCH_1}")
    endif()
  endif()
  set(_mncompile_pin_CMSIS_NN_URL "https://github.com/ARM-software/CMSIS-NN/archive/${sha}.zip" PARENT_SCOPE)
  set(_mncompile_pin_CMSIS_NN_MD5 "${md5}" PARENT_SCOPE)
endfunction()

# _mncompile_tflm_fetch(<name> <url> <md5 or empty> <destination>)
# Downloads and unpacks <url> into <destination> with FetchContent_Populate,
# run in a child `cmake -P` so that a failed download ends in our own
# FATAL_ERROR instead of FetchContent's. A stamp file records what was
# unpacked, so later configure runs neither download nor start a sub-build.
# Every variable can be overridden for a mirror: -DMNCOMPILE_<NAME>_URL=...
# -DMNCOMPILE_<NAME>_MD5=... (empty MD5: no check).
function(_mncompile_tflm_fetch name url md5 dest)
  if(DEFINED MNCOMPILE_${name}_URL)
    set(url "${MNCOMPILE_${name}_URL}")
  endif()
  if(DEFINED MNCOMPILE_${name}_MD5)
    set(md5 "${MNCOMPILE_${name}_MD5}")
  endif()
  set(stamp "${dest}/.mncompile-fetched")
  string(STRIP "${url} ${md5}" want)
  if(EXISTS "${stamp}")
    file(READ "${stamp}" have)
    string(STRIP "${have}" have)
    if(have STREQUAL want)
      return()
    endif()
  endif()
  if(FETCHCONTENT_FULLY_DISCONNECTED)
    message(FATAL_ERROR
      "mncompile/tflm.cmake: ${name} is not downloaded yet (no '${stamp}') and "
      "FETCHCONTENT_FULLY_DISCONNECTED is ON, so it cannot be downloaded from ${url}.\n"
      "Configure once with -DFETCHCONTENT_FULLY_DISCONNECTED=OFF and internet access, "
      "or use local sources: -DTFLM_ROOT=/path/to/tflite-micro (with its third-party "
      "downloads, or -DTFLM_THIRD_PARTY_DIR=...).")
  endif()

  string(TOLOWER "${name}" lower)
  set(work "${FETCHCONTENT_BASE_DIR}/mncompile-${lower}")
  file(REMOVE_RECURSE "${dest}" "${work}")
  file(MAKE_DIRECTORY "${work}")
  set(hash "")
  if(md5)
    set(hash "URL_HASH MD5=${md5}")
  endif()
  file(WRITE "${work}/populate.cmake" "\
cmake_minimum_required(VERSION 3.20)
if(POLICY CMP0135)
  cmake_policy(SET CMP0135 NEW)
endif()
include(FetchContent)
FetchContent_Populate(mncompile_${lower} QUIET
  URL [==[${url}]==]
  ${hash}
  SOURCE_DIR [==[${dest}]==]
  SUBBUILD_DIR [==[${work}/subbuild]==]
  BINARY_DIR [==[${work}/build]==])
")
  set(generator "")
  if(CMAKE_GENERATOR)
    list(APPEND generator "-DCMAKE_GENERATOR=${CMAKE_GENERATOR}")
  endif()
  if(CMAKE_MAKE_PROGRAM)
    list(APPEND generator "-DCMAKE_MAKE_PROGRAM=${CMAKE_MAKE_PROGRAM}")
  endif()
  foreach(var IN ITEMS CMAKE_TLS_VERIFY CMAKE_TLS_CAINFO CMAKE_NETRC CMAKE_NETRC_FILE)
    if(DEFINED ${var})
      list(APPEND generator "-D${var}=${${var}}")
    endif()
  endforeach()
  message(STATUS "mncompile: downloading ${name} from ${url}")
  execute_process(
    COMMAND "${CMAKE_COMMAND}" ${generator} -P "${work}/populate.cmake"
    WORKING_DIRECTORY "${work}"
    RESULT_VARIABLE result
    OUTPUT_VARIABLE log
    ERROR_VARIABLE log)
  if(NOT result EQUAL 0 OR NOT EXISTS "${dest}")
    file(WRITE "${work}/populate.log" "${log}")
    string(LENGTH "${log}" length)
    if(length GREATER 1500)
      math(EXPR length "${length} - 1500")
      string(SUBSTRING "${log}" ${length} -1 log)
    endif()
    if(NOT md5)
      set(md5 "(not checked)")
    endif()
    message(FATAL_ERROR
      "mncompile/tflm.cmake: downloading ${name} failed (${result}).\n"
      "  URL: ${url}\n  MD5: ${md5}\n  log: ${work}/populate.log\n"
      "Check the network (proxy: https_proxy), or use local sources: "
      "-DTFLM_ROOT=/path/to/tflite-micro after running TFLM's "
      "`make -f tensorflow/lite/micro/tools/make/Makefile third_party_downloads` there "
      "(or -DTFLM_THIRD_PARTY_DIR=..., -DCMSIS_NN_ROOT=...). "
      "A mirror can be given with -DMNCOMPILE_${name}_URL=... -DMNCOMPILE_${name}_MD5=...\n"
      "Last lines of the log:\n${log}")
  endif()
  file(REMOVE_RECURSE "${work}")
  file(WRITE "${stamp}" "${want}\n")
endfunction()

# TFLM's Makefile applies tools/make/flatbuffers.patch to the flatbuffers
# download (third_party.inc). Do the same after our own download.
function(_mncompile_tflm_patch_flatbuffers root dir)
  set(patch_file "${root}/tensorflow/lite/micro/tools/make/flatbuffers.patch")
  if(NOT EXISTS "${patch_file}" OR EXISTS "${dir}/.mncompile-patched")
    return()
  endif()
  find_program(MNCOMPILE_PATCH_EXECUTABLE patch)
  if(NOT MNCOMPILE_PATCH_EXECUTABLE)
    message(WARNING
      "mncompile/tflm.cmake: no `patch` program, flatbuffers is left without TFLM's "
      "flatbuffers.patch (FLATBUFFERS_LOCALE_INDEPENDENT=0 and FLATBUFFERS_PREFER_PRINTF=1 "
      "are defined instead; the code is a little larger).")
    return()
  endif()
  execute_process(
    COMMAND "${MNCOMPILE_PATCH_EXECUTABLE}" -p1 -N -i "${patch_file}"
    WORKING_DIRECTORY "${dir}"
    RESULT_VARIABLE result OUTPUT_VARIABLE log ERROR_VARIABLE log)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR
      "mncompile/tflm.cmake: applying ${patch_file} to ${dir} failed:\n${log}\n"
      "Delete ${dir} to download it again.")
  endif()
  file(WRITE "${dir}/.mncompile-patched" "${patch_file}\n")
endfunction()

# ---------------------------------------------------------------------------
# Where the sources are
# ---------------------------------------------------------------------------

if(CMSIS_NN_ROOT OR MNCOMPILE_TFLM_CMSIS_NN)
  set(_mncompile_tflm_cmsis_nn ON)
else()
  set(_mncompile_tflm_cmsis_nn OFF)
endif()

set(_mncompile_tflm_fetched OFF)
if(TFLM_ROOT)
  get_filename_component(_mncompile_tflm_root "${TFLM_ROOT}" ABSOLUTE)
  _mncompile_tflm_require("tflite-micro" "${_mncompile_tflm_root}"
    "tensorflow/lite/micro/micro_interpreter.cc"
    "TFLM_ROOT must be a tflite-micro checkout (git clone https://github.com/tensorflow/tflite-micro).")
  # Which commit it is, when it is a git checkout: `mncompile run` holds the arena to the byte only
  # on the commit the prediction models.
  find_package(Git QUIET)
  set(_mncompile_tflm_commit "")
  if(GIT_FOUND)
    execute_process(COMMAND "${GIT_EXECUTABLE}" -C "${_mncompile_tflm_root}" rev-parse HEAD
                    OUTPUT_VARIABLE _mncompile_tflm_commit OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  endif()
  file(WRITE "${CMAKE_BINARY_DIR}/mncompile-tflm-commit.txt" "${_mncompile_tflm_commit}\n")
else()
  include(FetchContent)
  set(_mncompile_tflm_root "${FETCHCONTENT_BASE_DIR}/tflite_micro-src")
  _mncompile_tflm_fetch(TFLM
    "https://github.com/tensorflow/tflite-micro/archive/${MNCOMPILE_TFLM_COMMIT}.zip" ""
    "${_mncompile_tflm_root}")
  _mncompile_tflm_require("tflite-micro" "${_mncompile_tflm_root}"
    "tensorflow/lite/micro/micro_interpreter.cc"
    "The download of tflite-micro ${MNCOMPILE_TFLM_COMMIT} is incomplete: delete it and configure again.")
  set(_mncompile_tflm_fetched ON)
  file(WRITE "${CMAKE_BINARY_DIR}/mncompile-tflm-commit.txt" "${MNCOMPILE_TFLM_COMMIT}\n")
endif()

set(_mncompile_tflm_downloads "${_mncompile_tflm_root}/tensorflow/lite/micro/tools/make/downloads")
if(TFLM_THIRD_PARTY_DIR)
  get_filename_component(_mncompile_tflm_3p "${TFLM_THIRD_PARTY_DIR}" ABSOLUTE)
else()
  set(_mncompile_tflm_3p "${_mncompile_tflm_downloads}")
endif()

if(_mncompile_tflm_fetched AND NOT TFLM_THIRD_PARTY_DIR)
  # Lay the third-party sources out where TFLM's Makefile puts them.
  _mncompile_tflm_read_pins("${_mncompile_tflm_root}")
  foreach(_mncompile_dep GEMMLOWP RUY FLATBUFFERS)
    string(TOLOWER "${_mncompile_dep}" _mncompile_dir)
    _mncompile_tflm_fetch(${_mncompile_dep} "${_mncompile_pin_${_mncompile_dep}_URL}"
      "${_mncompile_pin_${_mncompile_dep}_MD5}" "${_mncompile_tflm_3p}/${_mncompile_dir}")
  endforeach()
  _mncompile_tflm_patch_flatbuffers("${_mncompile_tflm_root}" "${_mncompile_tflm_3p}/flatbuffers")
  if(_mncompile_tflm_cmsis_nn)
    if(NOT CMSIS_ROOT)
      _mncompile_tflm_fetch(CMSIS "${_mncompile_pin_CMSIS_URL}" "${_mncompile_pin_CMSIS_MD5}"
        "${_mncompile_tflm_3p}/cmsis")
    endif()
    if(NOT CMSIS_NN_ROOT)
      _mncompile_tflm_fetch(CMSIS_NN "${_mncompile_pin_CMSIS_NN_URL}" "${_mncompile_pin_CMSIS_NN_MD5}"
        "${_mncompile_tflm_3p}/cmsis_nn")
    endif()
  endif()
endif()

string(CONCAT _mncompile_tflm_fix_3p
  "Lay out the pinned sources offline with mncompile's scripts/tflm_sources.py, or run TFLM's "
  "`make -f tensorflow/lite/micro/tools/make/Makefile third_party_downloads` in "
  "${_mncompile_tflm_root}, or pass -DTFLM_THIRD_PARTY_DIR=<folder holding flatbuffers/, "
  "gemmlowp/ and ruy/>.")
_mncompile_tflm_require("flatbuffers" "${_mncompile_tflm_3p}/flatbuffers"
  "include/flatbuffers/flatbuffers.h" "${_mncompile_tflm_fix_3p}")
_mncompile_tflm_require("gemmlowp" "${_mncompile_tflm_3p}/gemmlowp"
  "fixedpoint/fixedpoint.h" "${_mncompile_tflm_fix_3p}")
_mncompile_tflm_require("ruy" "${_mncompile_tflm_3p}/ruy"
  "ruy/profiler/instrumentation.h" "${_mncompile_tflm_fix_3p}")

if(_mncompile_tflm_cmsis_nn)
  if(CMSIS_NN_ROOT)
    get_filename_component(_mncompile_tflm_nn "${CMSIS_NN_ROOT}" ABSOLUTE)
  else()
    set(_mncompile_tflm_nn "${_mncompile_tflm_3p}/cmsis_nn")
  endif()
  _mncompile_tflm_require("CMSIS-NN" "${_mncompile_tflm_nn}" "Include/arm_nnfunctions.h"
    "Pass -DCMSIS_NN_ROOT=<CMSIS-NN checkout> (git clone https://github.com/ARM-software/CMSIS-NN), "
    "or run TFLM's `make -f tensorflow/lite/micro/tools/make/Makefile OPTIMIZED_KERNEL_DIR=cmsis_nn "
    "third_party_downloads` in ${_mncompile_tflm_root} (it downloads cmsis/ and cmsis_nn/ too).")
  if(CMSIS_ROOT)
    get_filename_component(_mncompile_tflm_cmsis "${CMSIS_ROOT}" ABSOLUTE)
    _mncompile_tflm_require("CMSIS_6 (Core headers)" "${_mncompile_tflm_cmsis}"
      "CMSIS/Core/Include/cmsis_compiler.h"
      "CMSIS_ROOT must be a CMSIS_6 checkout (git clone https://github.com/ARM-software/CMSIS_6), or empty.")
  elseif(EXISTS "${_mncompile_tflm_3p}/cmsis/CMSIS/Core/Include/cmsis_compiler.h")
    set(_mncompile_tflm_cmsis "${_mncompile_tflm_3p}/cmsis")
  else()
    set(_mncompile_tflm_cmsis "")
    message(STATUS "mncompile: no CMSIS_6 in ${_mncompile_tflm_3p}/cmsis; "
                   "CMSIS-NN is built without the CMSIS Core headers (it does not need them)")
  endif()
  set(MNCOMPILE_TFLM_KERNELS "cmsis-nn")
else()
  set(MNCOMPILE_TFLM_KERNELS "reference")
endif()
set(MNCOMPILE_TFLM_ROOT "${_mncompile_tflm_root}")

# A git checkout of another commit than the one mncompile predicted the arena for.
if(TFLM_ROOT AND EXISTS "${_mncompile_tflm_root}/.git")
  find_package(Git QUIET)
  if(GIT_FOUND)
    execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse HEAD
      WORKING_DIRECTORY "${_mncompile_tflm_root}"
      RESULT_VARIABLE _mncompile_result OUTPUT_VARIABLE _mncompile_head
      OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_mncompile_result EQUAL 0 AND NOT _mncompile_head STREQUAL MNCOMPILE_TFLM_COMMIT)
      message(STATUS "mncompile: TFLM_ROOT is tflite-micro ${_mncompile_head}, "
                     "mncompile targets ${MNCOMPILE_TFLM_COMMIT}")
    endif()
  endif()
endif()

# ---------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------

# Globbed relative to the tree, so that the exclusions never match a folder
# above it (a checkout under /tmp/testing/ must not lose every file).
set(_mncompile_m "tensorflow/lite/micro")
file(GLOB_RECURSE _mncompile_tflm_sources LIST_DIRECTORIES false RELATIVE "${_mncompile_tflm_root}"
  "${_mncompile_tflm_root}/tensorflow/*.cc" "${_mncompile_tflm_root}/tensorflow/*.c")
# TFLite sources shared with TFLM (the Makefile's TFL_CC_SRCS): all outside
# tensorflow/lite/micro and tensorflow/lite/experimental, less array.cc (not
# for TF_LITE_STATIC_MEMORY).
set(_mncompile_tflm_tfl ${_mncompile_tflm_sources})
list(FILTER _mncompile_tflm_tfl EXCLUDE REGEX "^tensorflow/lite/(micro|experimental)/")
list(FILTER _mncompile_tflm_tfl EXCLUDE REGEX "^tensorflow/lite/array\\.cc$")
# TFLM itself: micro/, its arena_allocator/, memory_planner/, tflite_bridge/
# and the reference kernels (kernels/*.cc, not the variant folders below it).
list(FILTER _mncompile_tflm_sources INCLUDE REGEX
  "^${_mncompile_m}/((arena_allocator|memory_planner|tflite_bridge|kernels)/)?[^/]+$")
list(APPEND _mncompile_tflm_sources ${_mncompile_tflm_tfl})
foreach(_mncompile_re
    "_test\\.cc$" "_test_common\\.cc$" "test_helper" "/fake_[^/]*$" "/mock_[^/]*$"
    "benchmark" "/kernel_runner\\.cc$" "_generated_data\\.cc$" "/python/" "/testing/")
  list(FILTER _mncompile_tflm_sources EXCLUDE REGEX "${_mncompile_re}")
endforeach()
list(SORT _mncompile_tflm_sources)

set(_mncompile_tflm_nn_sources "")
if(_mncompile_tflm_cmsis_nn)
  # kernels/cmsis_nn/X.cc replaces kernels/X.cc (TFLM's specialize_files.py:
  # replacement only, a variant without a reference kernel is not added).
  file(GLOB _mncompile_tflm_variants LIST_DIRECTORIES false RELATIVE "${_mncompile_tflm_root}"
    "${_mncompile_tflm_root}/${_mncompile_m}/kernels/cmsis_nn/*.cc")
  foreach(_mncompile_variant IN LISTS _mncompile_tflm_variants)
    get_filename_component(_mncompile_name "${_mncompile_variant}" NAME)
    list(FIND _mncompile_tflm_sources "${_mncompile_m}/kernels/${_mncompile_name}" _mncompile_at)
    if(_mncompile_at GREATER_EQUAL 0)
      list(REMOVE_AT _mncompile_tflm_sources ${_mncompile_at})
      list(INSERT _mncompile_tflm_sources ${_mncompile_at} "${_mncompile_variant}")
    endif()
  endforeach()
  file(GLOB_RECURSE _mncompile_tflm_nn_sources LIST_DIRECTORIES false RELATIVE "${_mncompile_tflm_nn}"
    "${_mncompile_tflm_nn}/Source/*.c")
  list(FILTER _mncompile_tflm_nn_sources EXCLUDE REGEX "(_f16|_f32|/arm_nntables_flt)\\.c$")
  list(SORT _mncompile_tflm_nn_sources)
  if(NOT _mncompile_tflm_nn_sources)
    message(FATAL_ERROR "mncompile/tflm.cmake: no CMSIS-NN sources in '${_mncompile_tflm_nn}/Source': "
                        "is CMSIS_NN_ROOT a complete CMSIS-NN checkout?")
  endif()
  list(TRANSFORM _mncompile_tflm_nn_sources PREPEND "${_mncompile_tflm_nn}/")
  get_property(_mncompile_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST _mncompile_languages)
    enable_language(C)
  endif()
endif()
list(TRANSFORM _mncompile_tflm_sources PREPEND "${_mncompile_tflm_root}/")

list(LENGTH _mncompile_tflm_sources _mncompile_n)
list(LENGTH _mncompile_tflm_nn_sources _mncompile_n_nn)
message(STATUS "mncompile: TFLM (${MNCOMPILE_TFLM_KERNELS} kernels) from ${_mncompile_tflm_root}: "
               "${_mncompile_n} TFLM sources, ${_mncompile_n_nn} CMSIS-NN sources")

# ---------------------------------------------------------------------------
# The library
# ---------------------------------------------------------------------------

add_library(tflm STATIC ${_mncompile_tflm_sources} ${_mncompile_tflm_nn_sources})
set_target_properties(tflm PROPERTIES
  C_STANDARD 17 C_STANDARD_REQUIRED ON C_EXTENSIONS OFF
  CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON CXX_EXTENSIONS OFF
  COMPILE_WARNING_AS_ERROR OFF
  MNCOMPILE_TFLM_KERNELS "${MNCOMPILE_TFLM_KERNELS}"
  MNCOMPILE_TFLM_ROOT "${_mncompile_tflm_root}")
target_compile_features(tflm INTERFACE cxx_std_17)

# SYSTEM: the application's warning flags (-Wall -Wextra -Werror -Wconversion) do
# not apply to TFLM's, flatbuffers' and gemmlowp's headers.
target_include_directories(tflm SYSTEM PUBLIC
  "${_mncompile_tflm_root}"
  "${_mncompile_tflm_3p}/flatbuffers/include"
  "${_mncompile_tflm_3p}/gemmlowp"
  "${_mncompile_tflm_3p}/ruy")
target_compile_definitions(tflm
  PUBLIC TF_LITE_STATIC_MEMORY TF_LITE_MCU_DEBUG_LOG
  PRIVATE TF_LITE_DISABLE_X86_NEON KERNELS_OPTIMIZED_FOR_SPEED)

file(STRINGS "${_mncompile_tflm_3p}/flatbuffers/include/flatbuffers/base.h" _mncompile_tflm_patched
     REGEX "For TFLM, we always want FLATBUFFERS_LOCALE_INDEPENDENT")
if(NOT _mncompile_tflm_patched)
  # Not patched with TFLM's flatbuffers.patch: get its two configuration changes.
  message(STATUS "mncompile: ${_mncompile_tflm_3p}/flatbuffers lacks TFLM's flatbuffers.patch; "
                 "defining FLATBUFFERS_LOCALE_INDEPENDENT=0 FLATBUFFERS_PREFER_PRINTF=1")
  target_compile_definitions(tflm PUBLIC FLATBUFFERS_LOCALE_INDEPENDENT=0 FLATBUFFERS_PREFER_PRINTF=1)
endif()

if(_mncompile_tflm_cmsis_nn)
  # As TFLM's ext_libs/cmsis_nn.inc: -I CMSIS_NN, CMSIS_NN/Include (the kernels
  # include "Include/arm_nnfunctions.h"), CMSIS and CMSIS/CMSIS/Core/Include.
  target_include_directories(tflm SYSTEM PRIVATE "${_mncompile_tflm_nn}" "${_mncompile_tflm_nn}/Include")
  if(_mncompile_tflm_cmsis)
    target_include_directories(tflm SYSTEM PRIVATE
      "${_mncompile_tflm_cmsis}" "${_mncompile_tflm_cmsis}/CMSIS/Core/Include")
  endif()
  target_compile_definitions(tflm PUBLIC CMSIS_NN ARM_NN_ENABLE_F16=0 ARM_NN_ENABLE_F32=0)
endif()

# Warnings: the project's are not TFLM's. Drop the warning options inherited
# from the directory's COMPILE_OPTIONS (add_compile_options(-Wall -Werror ...);
# -Wa,/-Wp,/-Wl, pass-through options stay), and let -Wno-error come after
# CMAKE_<LANG>_FLAGS. TFLM then builds without a warning with GCC 12.
get_property(_mncompile_opts TARGET tflm PROPERTY COMPILE_OPTIONS)
if(_mncompile_opts)
  list(FILTER _mncompile_opts EXCLUDE REGEX "^-W([^apl]|[apl][^,])")
  set_property(TARGET tflm PROPERTY COMPILE_OPTIONS ${_mncompile_opts})
endif()
target_compile_options(tflm PRIVATE
  ${MNCOMPILE_TFLM_OPT}
  -ffunction-sections -fdata-sections
  -fno-unwind-tables -fno-asynchronous-unwind-tables
  $<$<COMPILE_LANGUAGE:CXX>:-fno-rtti -fno-exceptions -fno-threadsafe-statics>
  -Wno-error
  # GCC on Arm: "parameter passing for argument of type ... changed in GCC 7.1"
  # notes (none at tflite-micro 90b983c2b3f1 with GCC 12.2; kept for others).
  -Wno-psabi)

# GCC 12 + binutils 2.40 with MVE (-mcpu=cortex-m55/m85): GCC's late
# if-conversion puts VCVT in IT blocks, and gas then reads `vcvtne.f32.s32` as
# the MVE VCVTN with an `e` predicate: "Error: syntax error -- `vcvtne.f32.s32
# s15,s17'" (kernels/resize_nearest_neighbor.cc at tflite-micro 90b983c2b3f1).
# Probe the assembler with the project's CPU flags; if it assembles the plain
# instruction but not the conditional one, build without late if-conversion.
# PUBLIC: the application's own float code meets the same assembler.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  include(CheckCXXSourceCompiles)
  set(_mncompile_saved_type "${CMAKE_TRY_COMPILE_TARGET_TYPE}")
  set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
  set(_mncompile_saved_quiet "${CMAKE_REQUIRED_QUIET}")
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles(
    "int main() { __asm__ volatile(\"vcvt.f32.s32 s15, s17\"); return 0; }"
    MNCOMPILE_TFLM_AS_VCVT)
  if(MNCOMPILE_TFLM_AS_VCVT)
    check_cxx_source_compiles(
      "int main() { __asm__ volatile(\"cmp r0, #0; it ne; vcvtne.f32.s32 s15, s17\"); return 0; }"
      MNCOMPILE_TFLM_AS_VCVTNE)
    if(NOT MNCOMPILE_TFLM_AS_VCVTNE)
      message(STATUS "mncompile: this assembler rejects conditional VCVT (MVE): "
                     "compiling with -fno-if-conversion2")
      target_compile_options(tflm PUBLIC -fno-if-conversion2)
    endif()
  endif()
  if(_mncompile_saved_type)
    set(CMAKE_TRY_COMPILE_TARGET_TYPE "${_mncompile_saved_type}")
  else()
    unset(CMAKE_TRY_COMPILE_TARGET_TYPE)
  endif()
  set(CMAKE_REQUIRED_QUIET "${_mncompile_saved_quiet}")
endif()

# Clean up the helper variables (this file runs in the includer's scope).
foreach(_mncompile_var IN ITEMS
    _mncompile_tflm_cmsis_nn _mncompile_tflm_fetched _mncompile_tflm_root _mncompile_tflm_downloads
    _mncompile_tflm_3p _mncompile_tflm_nn _mncompile_tflm_cmsis _mncompile_tflm_fix_3p
    _mncompile_tflm_tfl _mncompile_tflm_core _mncompile_tflm_kernels _mncompile_tflm_sources
    _mncompile_tflm_nn_sources _mncompile_tflm_variants _mncompile_tflm_patched _mncompile_m
    _mncompile_re _mncompile_variant _mncompile_name _mncompile_at _mncompile_n _mncompile_n_nn
    _mncompile_opts _mncompile_languages _mncompile_dep _mncompile_dir _mncompile_result
    _mncompile_head _mncompile_saved_type _mncompile_saved_quiet
    _mncompile_pin_GEMMLOWP_URL _mncompile_pin_GEMMLOWP_MD5 _mncompile_pin_RUY_URL
    _mncompile_pin_RUY_MD5 _mncompile_pin_FLATBUFFERS_URL _mncompile_pin_FLATBUFFERS_MD5
    _mncompile_pin_CMSIS_URL _mncompile_pin_CMSIS_MD5 _mncompile_pin_CMSIS_NN_URL
    _mncompile_pin_CMSIS_NN_MD5)
  unset(${_mncompile_var})
endforeach()
unset(_mncompile_var)
