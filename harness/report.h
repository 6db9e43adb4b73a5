/* nbd-matrix: the outputs written from the result model: results.json,
 * results.tap (TAP version 14), junit.xml, matrix.md and index.html.
 */
#ifndef NBDM_REPORT_H
#define NBDM_REPORT_H

#include <stdio.h>

#include "results.h"

int report_tap (const struct run *run, FILE *fp);
int report_junit (const struct run *run, FILE *fp);
int report_markdown (const struct run *run, FILE *fp);
int report_html (const struct run *run, FILE *fp);

/* Write all five files into dir.  Returns 0 or -1 (message printed). */
int report_all (const struct run *run, const char *dir);

/* Sorted, de-duplicated names of servers/clients/scenarios that appear in
 * the cells (in implementation/scenario order where known).
 */
char **report_axis (const struct run *run, const char *what);

/* Short label of a verdict for the grids ("PASS", "UNSUP" ...). */
const char *verdict_short (enum verdict v);

#endif /* NBDM_REPORT_H */
