/*
 * main.c - feedline-engagement: the engagement processor binary (logic in
 * fl_engagement.c, everything else in the runtime).
 */
#include "fl_engagement.h"
#include "fl_runtime.h"

int main(int argc, char **argv)
{
    return fl_runtime_main(&fl_engagement_processor, argc, argv);
}
