/* Umbrella header of the CStepRunProto module: the protoc-c output for proto/steprun/v1/steprun.proto.
 * The generated sources are committed; proto/generate.sh (make proto) regenerates them. */
#ifndef CSTEPRUNPROTO_H
#define CSTEPRUNPROTO_H

#include "steprun/v1/steprun.pb-c.h"

#endif
