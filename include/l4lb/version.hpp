// l4lb version: the single place the version lives; CMake reads it from here.
#pragma once

#define L4LB_VERSION_MAJOR 0
#define L4LB_VERSION_MINOR 1
#define L4LB_VERSION_PATCH 0
#define L4LB_VERSION (L4LB_VERSION_MAJOR * 10000 + L4LB_VERSION_MINOR * 100 + L4LB_VERSION_PATCH)
