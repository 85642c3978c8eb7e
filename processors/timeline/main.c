/*
 * main.c - feedline-timeline: the timeline processor binary (logic in
 * fl_timeline.c, everything else in the runtime).
 */
#include "fl_runtime.h"
#include "fl_timeline.h"

int main(int argc, char **argv)
{
    return fl_runtime_main(&fl_timeline_processor, argc, argv);
}
