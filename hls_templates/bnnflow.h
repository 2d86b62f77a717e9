// bnnflow HLS stream library: one function template per hardware op.
#ifndef BNNFLOW_H
#define BNNFLOW_H

#include "common.h"
#include "concat.h"
#include "dwc.h"
#include "fixed_scale.h"
#include "global_pool.h"
#include "label_select.h"
#include "maxpool.h"
#include "mvu_binary.h"
#include "mvu_int.h"
#include "sliding_window.h"
#include "stream_ops.h"
#include "thresholding.h"

#endif
