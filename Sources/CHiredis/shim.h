#ifndef STARPIPE_CHIREDIS_SHIM_H
#define STARPIPE_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
