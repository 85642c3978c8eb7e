/*
 * main.c - feedline-pg-sink: the PostgreSQL sink on the sink runtime.
 */
#include "fl_pg_sink.h"

int main(int argc, char **argv)
{
    return fl_sink_main(&fl_pg_sink, argc, argv);
}
