/**
 * Tests of the drivers' own suites that fail through the proxy but not straight to Dolt, each
 * with the reason. drivers-suites.test.ts fails on any proxy-only failure not listed here, and
 * reports listed ones that no longer differ, so the list only shrinks as the proxy gets closer.
 */

import type { KnownDifference } from './suite-results';

export const knownDifferences: readonly KnownDifference[] = [];
