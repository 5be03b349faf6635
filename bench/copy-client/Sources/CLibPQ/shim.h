#ifndef STARPIPE_CLIBPQ_SHIM_H
#define STARPIPE_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
