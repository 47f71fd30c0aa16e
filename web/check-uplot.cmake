# SPDX-License-Identifier: MIT
# cmake -DFILE=<path> -P check-uplot.cmake : fails with the set-up hint when FILE is missing.
if(NOT EXISTS "${FILE}")
  message(FATAL_ERROR "${FILE} is missing: run scripts/setup.sh (installs uPlot from npm)")
endif()
