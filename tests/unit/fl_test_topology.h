/*
 * fl_test_topology.h - the topology the driver tests run against,
 * tests/data/topology/driver.yaml under $FEEDLINE_SOURCE_DIR (ctest sets
 * it; the current directory otherwise). Test code only.
 */
#ifndef FL_TEST_TOPOLOGY_H
#define FL_TEST_TOPOLOGY_H

#include <criterion/criterion.h>

#include "fl_topology.h"

#include <stdio.h>
#include <stdlib.h>

/* Loads driver.yaml or fails the test; the caller frees it. */
static inline fl_topology_t *fl_test_driver_topology(void)
{
    char path[4096], err[512] = "";
    const char *dir = getenv("FEEDLINE_SOURCE_DIR");

    snprintf(path, sizeof(path), "%s/tests/data/topology/driver.yaml", dir && *dir ? dir : ".");
    fl_topology_t *topo = fl_topology_load(path, err, sizeof(err));
    cr_assert_not_null(topo, "topology: %s", err);
    return topo;
}

#endif
