#ifndef CONVEYOR_CZMQ_SHIM_H
#define CONVEYOR_CZMQ_SHIM_H
// The only header Swift sees of libzmq. No shim functions are needed: every call Conveyor
// makes is callable from Swift as it is.
#include <zmq.h>
#endif
