/*
 * main.c - feedline-affinity: the affinity processor binary (logic in
 * fl_affinity.c, everything else in the runtime).
 */
#include "fl_affinity.h"
#include "fl_runtime.h"

int main(int argc, char **argv)
{
    return fl_runtime_main(&fl_affinity_processor, argc, argv);
}
