/*
 * main.c - feedline-fanout: the fan-out processor binary (logic in
 * fl_fanout.c, everything else in the runtime).
 */
#include "fl_fanout.h"
#include "fl_runtime.h"

int main(int argc, char **argv)
{
    return fl_runtime_main(&fl_fanout_processor, argc, argv);
}
