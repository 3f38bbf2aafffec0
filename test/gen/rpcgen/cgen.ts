/**
 * Emits C that fills rpcgen's C structures with random values, so the compatibility test can also go
 * C -> TypeScript with values that originate in C. Follows rpcgen's C mapping: `T x<>` becomes
 * `struct { u_int x_len; T *x_val; } x`, strings `char *`, unions `struct { disc; union { ... } U_u; }`.
 */
import type { Decl, Model, TypeRef } from '../../../src/gen/model.js';

const MAX_DEPTH = 3;

export function emitRandomGenerators(model: Model, typeNames: readonly string[]): string {
  const out: string[] = [
    'static unsigned long long rng_state = 0x9e3779b97f4a7c15ULL;',
    'static unsigned long long rnd64(void) { rng_state ^= rng_state << 13; rng_state ^= rng_state >> 7; rng_state ^= rng_state << 17; return rng_state; }',
    'static unsigned int rnd32(void) { return (unsigned int)(rnd64() >> 16); }',
    'static char *rnd_string(unsigned int max) { unsigned int n = rnd32() % (max < 24 ? max + 1 : 25), i; char *s = malloc(n + 1); for (i = 0; i < n; i++) s[i] = (char)(1 + rnd32() % 127); s[n] = 0; return s; }',
    'static char *rnd_bytes(unsigned int n) { unsigned int i; char *b = malloc(n + 1); for (i = 0; i < n; i++) b[i] = (char)rnd32(); return b; }',
  ];
  const names = [...model.types.keys()].filter((n) => n !== 'netobj' && n !== 'des_block');
  for (const name of names) out.push(`static void rand_${name}(${name} *p, int depth);`);
  let counter = 0;
  const fresh = (): string => `v${counter++}`;

  const ref = (r: TypeRef, lv: string, depth: string, lines: string[]): void => {
    if (r.kind === 'primitive') {
      const expr = {
        int: '(int)rnd32()',
        uint: 'rnd32()',
        hyper: '(quad_t)rnd64()',
        uhyper: '(u_quad_t)rnd64()',
        bool: '(bool_t)(rnd32() & 1)',
        float: '(float)((int)(rnd32() % 200001) - 100000) / 16',
        double: '(double)((int)(rnd32() % 2000001) - 1000000) / 64',
      }[r.type];
      lines.push(`${lv} = ${expr};`);
      return;
    }
    if (r.name === 'netobj') {
      const n = fresh();
      lines.push(`{ unsigned int ${n} = rnd32() % 41; ${lv}.n_len = ${n}; ${lv}.n_bytes = rnd_bytes(${n}); }`);
      return;
    }
    lines.push(`rand_${r.name}(&${lv}, ${depth} + 1);`);
  };

  const decl = (d: Decl, lv: string, depth: string, lines: string[]): void => {
    switch (d.kind) {
      case 'void':
        return;
      case 'scalar':
        ref(d.type, lv, depth, lines);
        return;
      case 'fixedOpaque': {
        const i = fresh();
        lines.push(`{ unsigned int ${i}; for (${i} = 0; ${i} < ${d.length}; ${i}++) ${lv}[${i}] = (char)rnd32(); }`);
        return;
      }
      case 'varOpaque': {
        const n = fresh();
        lines.push(`{ unsigned int ${n} = rnd32() % ${Math.min(d.max, 40) + 1}; ${lv}.${d.name}_len = ${n}; ${lv}.${d.name}_val = rnd_bytes(${n}); }`);
        return;
      }
      case 'string':
        lines.push(`${lv} = rnd_string(${Math.min(d.max, 0x7fffffff)}u);`);
        return;
      case 'fixedArray': {
        const i = fresh();
        lines.push(`{ unsigned int ${i}; for (${i} = 0; ${i} < ${d.length}; ${i}++) {`);
        ref(d.type, `${lv}[${i}]`, depth, lines);
        lines.push('} }');
        return;
      }
      case 'varArray': {
        const n = fresh();
        const i = fresh();
        lines.push(`{ unsigned int ${i}, ${n} = ${depth} > ${MAX_DEPTH} ? 0 : rnd32() % ${Math.min(d.max, 3) + 1};`);
        lines.push(`${lv}.${d.name}_len = ${n}; ${lv}.${d.name}_val = calloc(${n} + 1, sizeof(*${lv}.${d.name}_val));`);
        lines.push(`for (${i} = 0; ${i} < ${n}; ${i}++) {`);
        ref(d.type, `${lv}.${d.name}_val[${i}]`, depth, lines);
        lines.push('} }');
        return;
      }
      case 'optional':
        lines.push(`if (${depth} > ${MAX_DEPTH} || rnd32() % 3 == 0) ${lv} = NULL; else {`);
        lines.push(`${lv} = calloc(1, sizeof(*${lv}));`);
        ref(d.type, `(*${lv})`, depth, lines);
        lines.push('}');
        return;
    }
  };

  const enumValues = (r: TypeRef): number[] | null => {
    let current = r;
    for (;;) {
      if (current.kind !== 'named') return null;
      const def = model.types.get(current.name);
      if (def?.kind === 'enum') return [...new Set(def.members.map((m) => m.value))];
      if (def?.kind !== 'typedef' || def.decl.kind !== 'scalar') return null;
      current = def.decl.type;
    }
  };

  for (const def of model.types.values()) {
    if (def.name === 'netobj' || def.name === 'des_block') continue;
    const lines: string[] = [];
    switch (def.kind) {
      case 'enum':
        lines.push(`static const int values[] = { ${[...new Set(def.members.map((m) => m.value))].join(', ')} };`);
        lines.push(`*p = (${def.name})values[rnd32() % ${new Set(def.members.map((m) => m.value)).size}];`);
        break;
      case 'typedef':
        decl(def.decl, '(*p)', 'depth', lines);
        break;
      case 'struct':
        for (const f of def.fields) if (f.kind !== 'void') decl(f, `p->${f.name}`, 'depth', lines);
        break;
      case 'union': {
        const disc = `p->${def.discriminant.name}`;
        const arms = def.arms.map((a) => ({ values: a.values, decl: a.decl }));
        const covered = new Set(def.arms.flatMap((a) => a.values));
        const isBool = def.discriminant.type.kind === 'primitive' && def.discriminant.type.type === 'bool';
        let defaultValues: number[] | null = null;
        if (def.defaultArm !== null) {
          const universe = isBool ? [0, 1] : enumValues(def.discriminant.type);
          defaultValues = universe === null ? [] : universe.filter((v) => !covered.has(v));
        }
        const choices = arms.length + (def.defaultArm !== null && (defaultValues === null || defaultValues.length > 0 || enumValues(def.discriminant.type) === null) ? 1 : 0);
        lines.push(`switch (rnd32() % ${choices}) {`);
        arms.forEach((arm, k) => {
          lines.push(`case ${k}: {`, `static const long long values[] = { ${arm.values.join(', ')} };`, `${disc} = values[rnd32() % ${arm.values.length}];`);
          decl(arm.decl, `p->${def.name}_u.${arm.decl.kind === 'void' ? '' : arm.decl.name}`, 'depth', lines);
          lines.push('break; }');
        });
        if (choices > arms.length && def.defaultArm !== null) {
          lines.push('default: {');
          if (defaultValues !== null && defaultValues.length > 0) {
            lines.push(`static const long long values[] = { ${defaultValues.join(', ')} };`, `${disc} = values[rnd32() % ${defaultValues.length}];`);
          } else {
            // An int discriminant: any value no case names.
            const checks = [...covered].map((v) => `${disc} == ${v}`).join(' || ') || '0';
            lines.push(`do ${disc} = rnd32(); while (${checks});`);
          }
          decl(def.defaultArm, `p->${def.name}_u.${def.defaultArm.kind === 'void' ? '' : def.defaultArm.name}`, 'depth', lines);
          lines.push('break; }');
        }
        lines.push('}');
        break;
      }
    }
    out.push(`static void rand_${def.name}(${def.name} *p, int depth) {`, '(void)depth;', ...lines, '}');
  }
  out.push('#define HAVE_RANDOM_GENERATORS 1');
  out.push(`#define TYPE_TABLE \\\n${typeNames.map((n) => `  { "${n}", (xdrproc_t) xdr_${n}, sizeof(${n}), (void (*)(void *, int)) rand_${n} },`).join(' \\\n')}`);
  return `${out.join('\n')}\n`;
}
