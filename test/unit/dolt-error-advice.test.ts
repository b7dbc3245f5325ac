import { expect } from 'chai';
import { doltErrorAdvice } from '../../proxy/server/dolt-error-advice';

describe('proxy: Dolt errors rewritten with what to do', () => {
  const rows: Array<{ errno: number; message: string; errno2: number | null; match?: RegExp }> = [
    { errno: 1105, message: 'cannot dolt_commit with no database selected', errno2: 1046, match: /^No database selected \(doltgate: .*USE app first\. Nothing was written\.\)$/ },
    { errno: 1105, message: 'no changes to dolt_commit on database other', errno2: 1105, match: /current one \(other\).*run USE/ },
    { errno: 1105, message: 'database server is set to read only mode', errno2: null },
    { errno: 1062, message: 'cannot dolt_commit with no database selected', errno2: null },
    { errno: 1146, message: "table not found: t", errno2: null },
  ];
  for (const row of rows) {
    it(`${row.errno} "${row.message}" → ${row.errno2 ?? 'unchanged'}`, () => {
      const advice = doltErrorAdvice(row.errno, row.message);
      if (row.errno2 === null) {
        expect(advice).to.equal(null);
        return;
      }
      expect(advice?.errno).to.equal(row.errno2);
      expect(advice?.message).to.match(row.match as RegExp);
      expect(advice?.message.length).to.be.below(512);
    });
  }
});
