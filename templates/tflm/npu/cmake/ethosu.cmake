# ethosu.cmake: Arm's Ethos-U core driver as the static library `ethosu_core_driver`,
# and TFLM's Ethos-U kernel in place of its stub.
#
# Part of mncompile; copied verbatim into every generated TFLM project for an Arm Ethos-U
# target. include() it after cmake/tflm.cmake (it changes the `tflm` library that file makes).
#
# Inputs:
#   ETHOSU_DRIVER_ROOT     (cache, required) a checkout of Arm's Ethos-U core driver,
#                          ethos-u-core-driver (Apache-2.0):
#                            git clone https://gitlab.arm.com/artificial-intelligence/ethos-u/ethos-u-core-driver.git
#                          TFLM's Makefile downloads the version it tests with into
#                          tensorflow/lite/micro/tools/make/downloads/ethos_u_core_driver
#                          (make ... TARGET=cortex_m_corstone_300 CO_PROCESSOR=ethos_u
#                          third_party_downloads); that folder works too.
#   MNCOMPILE_ETHOSU_ARCH  u55 or u65, set by the generated CMakeLists.txt.
#   CMSIS_ROOT             (cache, from tflm.cmake) CMSIS_6 for its Core headers: the driver's
#                          sources include <cmsis_compiler.h>. Empty: the CMSIS in TFLM's
#                          third-party folder (TFLM_THIRD_PARTY_DIR or TFLM_ROOT's
#                          tensorflow/lite/micro/tools/make/downloads), downloaded with
#                          tflm.cmake's pins when TFLM itself was downloaded.
#
# What it does:
#   - ethosu_core_driver: src/ethosu_driver.c, src/ethosu_pmu.c, src/ethosu_device_u55_u65.c of
#     the driver, with include/ (PUBLIC, SYSTEM) and src/ (its ethosu_config_u55.h/_u65.h), and
#     the definitions TFLM's ext_libs/ethos_u.inc uses: ETHOSU55 or ETHOSU65 and
#     ETHOSU_ARCH=u55|u65 (PUBLIC: the driver's headers read them), ETHOSU_LOG_SEVERITY=ETHOSU_LOG_WARN.
#     Third-party code: built with the toolchain's flags, no -Werror, no warning options of ours.
#   - the `tflm` library: tensorflow/lite/micro/kernels/ethos_u/ethosu.cc (the real ethos-u
#     operator, calling the driver) replaces tensorflow/lite/micro/kernels/ethosu.cc (the stub
#     whose Register_ETHOSU() returns nullptr: with it AddEthosU() registers nothing and
#     AllocateTensors() fails on the ethos-u operator), as TFLM's Makefile does for
#     CO_PROCESSOR=ethos_u; tflm links ethosu_core_driver.
#
# Outputs: the target ethosu_core_driver; MNCOMPILE_ETHOSU_DRIVER_ROOT.

cmake_minimum_required(VERSION 3.20)

if(TARGET ethosu_core_driver)
  return()
endif()
if(NOT TARGET tflm)
  message(FATAL_ERROR "mncompile/ethosu.cmake: include cmake/tflm.cmake first (it makes the `tflm` library)")
endif()

set(ETHOSU_DRIVER_ROOT "" CACHE PATH
    "Arm Ethos-U core driver checkout (ethos-u-core-driver): required for an Ethos-U target")
if(NOT MNCOMPILE_ETHOSU_ARCH MATCHES "^u(55|65)$")
  message(FATAL_ERROR "mncompile/ethosu.cmake: MNCOMPILE_ETHOSU_ARCH is '${MNCOMPILE_ETHOSU_ARCH}', "
                      "expected u55 or u65 (the generated CMakeLists.txt sets it)")
endif()

string(CONCAT _mncompile_ethosu_get
  "Get Arm's Ethos-U core driver (Apache-2.0): "
  "git clone https://gitlab.arm.com/artificial-intelligence/ethos-u/ethos-u-core-driver.git "
  "and configure with -DETHOSU_DRIVER_ROOT=/path/to/ethos-u-core-driver "
  "(or use the copy TFLM's Makefile downloads to "
  "tensorflow/lite/micro/tools/make/downloads/ethos_u_core_driver with "
  "`make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_corstone_300 "
  "CO_PROCESSOR=ethos_u third_party_downloads`).")
if(NOT ETHOSU_DRIVER_ROOT)
  message(FATAL_ERROR
    "mncompile/ethosu.cmake: ETHOSU_DRIVER_ROOT is not set. This project runs the model on an "
    "Arm Ethos-U NPU (${MNCOMPILE_ETHOSU_ARCH}) and needs the NPU's driver besides TFLM.\n"
    "${_mncompile_ethosu_get}")
endif()
get_filename_component(MNCOMPILE_ETHOSU_DRIVER_ROOT "${ETHOSU_DRIVER_ROOT}" ABSOLUTE)
if(NOT EXISTS "${MNCOMPILE_ETHOSU_DRIVER_ROOT}/include/ethosu_driver.h"
   AND EXISTS "${MNCOMPILE_ETHOSU_DRIVER_ROOT}/source/include/ethosu_driver.h")
  # Arm's CMSIS-Ethos-U pack keeps the same driver under source/.
  set(MNCOMPILE_ETHOSU_DRIVER_ROOT "${MNCOMPILE_ETHOSU_DRIVER_ROOT}/source")
endif()
set(_mncompile_ethosu_sources
  "${MNCOMPILE_ETHOSU_DRIVER_ROOT}/src/ethosu_driver.c"
  "${MNCOMPILE_ETHOSU_DRIVER_ROOT}/src/ethosu_pmu.c"
  "${MNCOMPILE_ETHOSU_DRIVER_ROOT}/src/ethosu_device_u55_u65.c")
foreach(_mncompile_file IN ITEMS "${MNCOMPILE_ETHOSU_DRIVER_ROOT}/include/ethosu_driver.h"
                                 ${_mncompile_ethosu_sources})
  if(NOT EXISTS "${_mncompile_file}")
    message(FATAL_ERROR
      "mncompile/ethosu.cmake: ETHOSU_DRIVER_ROOT='${ETHOSU_DRIVER_ROOT}' is not an Ethos-U core "
      "driver checkout: '${_mncompile_file}' does not exist.\n${_mncompile_ethosu_get}")
  endif()
endforeach()

# CMSIS_6 Core headers (cmsis_compiler.h) for the driver's sources.
set(_mncompile_ethosu_3p "${TFLM_THIRD_PARTY_DIR}")
if(NOT _mncompile_ethosu_3p)
  set(_mncompile_ethosu_3p "${MNCOMPILE_TFLM_ROOT}/tensorflow/lite/micro/tools/make/downloads")
endif()
if(CMSIS_ROOT)
  get_filename_component(_mncompile_ethosu_cmsis "${CMSIS_ROOT}" ABSOLUTE)
else()
  set(_mncompile_ethosu_cmsis "${_mncompile_ethosu_3p}/cmsis")
  if(NOT EXISTS "${_mncompile_ethosu_cmsis}/CMSIS/Core/Include/cmsis_compiler.h" AND NOT TFLM_ROOT
     AND NOT TFLM_THIRD_PARTY_DIR AND COMMAND _mncompile_tflm_fetch AND COMMAND _mncompile_tflm_read_pins)
    # TFLM was downloaded by tflm.cmake: fetch CMSIS_6 at the commit that TFLM pins, the same way.
    _mncompile_tflm_read_pins("${MNCOMPILE_TFLM_ROOT}")
    _mncompile_tflm_fetch(CMSIS "${_mncompile_pin_CMSIS_URL}" "${_mncompile_pin_CMSIS_MD5}"
                          "${_mncompile_ethosu_cmsis}")
  endif()
endif()
if(NOT EXISTS "${_mncompile_ethosu_cmsis}/CMSIS/Core/Include/cmsis_compiler.h")
  message(FATAL_ERROR
    "mncompile/ethosu.cmake: the Ethos-U driver needs the CMSIS_6 Core headers (cmsis_compiler.h), "
    "not found in '${_mncompile_ethosu_cmsis}/CMSIS/Core/Include'.\n"
    "Pass -DCMSIS_ROOT=<CMSIS_6 checkout> (git clone https://github.com/ARM-software/CMSIS_6), or run "
    "TFLM's `make -f tensorflow/lite/micro/tools/make/Makefile TARGET=cortex_m_corstone_300 "
    "CO_PROCESSOR=ethos_u third_party_downloads` in the tflite-micro tree (it downloads cmsis/).")
endif()

string(TOUPPER "${MNCOMPILE_ETHOSU_ARCH}" _mncompile_ethosu_upper)
add_library(ethosu_core_driver STATIC ${_mncompile_ethosu_sources})
set_target_properties(ethosu_core_driver PROPERTIES
  C_STANDARD 11 C_STANDARD_REQUIRED ON
  COMPILE_WARNING_AS_ERROR OFF)
target_include_directories(ethosu_core_driver SYSTEM PUBLIC "${MNCOMPILE_ETHOSU_DRIVER_ROOT}/include")
target_include_directories(ethosu_core_driver SYSTEM PRIVATE
  "${MNCOMPILE_ETHOSU_DRIVER_ROOT}/src" "${_mncompile_ethosu_cmsis}/CMSIS/Core/Include")
target_compile_definitions(ethosu_core_driver
  PUBLIC ETHOS${_mncompile_ethosu_upper} ETHOSU_ARCH=${MNCOMPILE_ETHOSU_ARCH}
  PRIVATE ETHOSU_LOG_SEVERITY=ETHOSU_LOG_WARN)
# Third-party code: no warning options of the project, and never -Werror.
get_property(_mncompile_opts TARGET ethosu_core_driver PROPERTY COMPILE_OPTIONS)
if(_mncompile_opts)
  list(FILTER _mncompile_opts EXCLUDE REGEX "^-W([^apl]|[apl][^,])")
  set_property(TARGET ethosu_core_driver PROPERTY COMPILE_OPTIONS ${_mncompile_opts})
endif()
target_compile_options(ethosu_core_driver PRIVATE -O2 -ffunction-sections -fdata-sections -Wno-error)

# TFLM: the ethos-u kernel replaces the stub of the same name.
set(_mncompile_ethosu_stub "${MNCOMPILE_TFLM_ROOT}/tensorflow/lite/micro/kernels/ethosu.cc")
set(_mncompile_ethosu_kernel "${MNCOMPILE_TFLM_ROOT}/tensorflow/lite/micro/kernels/ethos_u/ethosu.cc")
if(NOT EXISTS "${_mncompile_ethosu_kernel}")
  message(FATAL_ERROR
    "mncompile/ethosu.cmake: '${_mncompile_ethosu_kernel}' does not exist: this tflite-micro has no "
    "Ethos-U kernel. Use a tflite-micro checkout that has tensorflow/lite/micro/kernels/ethos_u/.")
endif()
get_target_property(_mncompile_ethosu_tflm_sources tflm SOURCES)
list(FIND _mncompile_ethosu_tflm_sources "${_mncompile_ethosu_stub}" _mncompile_at)
if(_mncompile_at GREATER_EQUAL 0)
  list(REMOVE_AT _mncompile_ethosu_tflm_sources ${_mncompile_at})
  list(INSERT _mncompile_ethosu_tflm_sources ${_mncompile_at} "${_mncompile_ethosu_kernel}")
else()
  list(APPEND _mncompile_ethosu_tflm_sources "${_mncompile_ethosu_kernel}")
endif()
set_property(TARGET tflm PROPERTY SOURCES ${_mncompile_ethosu_tflm_sources})
target_link_libraries(tflm PUBLIC ethosu_core_driver)
message(STATUS "mncompile: Ethos-U ${MNCOMPILE_ETHOSU_ARCH} driver from ${MNCOMPILE_ETHOSU_DRIVER_ROOT}; "
               "TFLM's kernels/ethos_u/ethosu.cc replaces kernels/ethosu.cc")

foreach(_mncompile_var IN ITEMS
    _mncompile_ethosu_get _mncompile_ethosu_sources _mncompile_file _mncompile_ethosu_3p
    _mncompile_ethosu_cmsis _mncompile_ethosu_upper _mncompile_opts _mncompile_ethosu_stub
    _mncompile_ethosu_kernel _mncompile_ethosu_tflm_sources _mncompile_at
    _mncompile_pin_GEMMLOWP_URL _mncompile_pin_GEMMLOWP_MD5 _mncompile_pin_RUY_URL
    _mncompile_pin_RUY_MD5 _mncompile_pin_FLATBUFFERS_URL _mncompile_pin_FLATBUFFERS_MD5
    _mncompile_pin_CMSIS_URL _mncompile_pin_CMSIS_MD5 _mncompile_pin_CMSIS_NN_URL
    _mncompile_pin_CMSIS_NN_MD5)
  unset(${_mncompile_var})
endforeach()
unset(_mncompile_var)
