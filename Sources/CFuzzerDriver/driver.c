// Only the declaration in include/CFuzzerDriver.h matters; SwiftPM wants one C file per target.
#include "CFuzzerDriver.h"
