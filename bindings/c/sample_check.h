/* Shared by the C samples: CHECK(call) prints the library's message and makes the calling function return 1
 * when a VisionCore call fails. */
#ifndef VISIONCORE_SAMPLE_CHECK_H
#define VISIONCORE_SAMPLE_CHECK_H
#include <stdio.h>
#include "visioncore.h"

#define CHECK(call)                                                             \
  do {                                                                          \
    if ((call) != VC_OK) {                                                      \
      fprintf(stderr, "%s failed: %s\n", #call, vc_last_error_message());       \
      return 1;                                                                 \
    }                                                                           \
  } while (0)
#endif
