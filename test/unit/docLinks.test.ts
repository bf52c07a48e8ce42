/**
 * Every relative link in README.md and docs/*.md leads somewhere: the file exists, and a #fragment
 * names a heading of that file (GitHub's anchor rules).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const docs = [
  'README.md',
  ...readdirSync(join(repoRoot, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(markdown: string): Set<string> {
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, '');
  return new Set([...withoutCode.matchAll(/^#{1,6}\s+(.+)$/gm)].map((match) => anchorOf(match[1] ?? '')));
}

function links(markdown: string): string[] {
  const withoutCode = markdown.replace(/^```[\s\S]*?^```/gm, '');
  return [...withoutCode.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => match[1] ?? '')
    .filter((target) => !/^[a-z]+:/.test(target));
}

describe('links in the docs', () => {
  it('anchors follow GitHub', () => {
    expect(anchorOf('`stress.ts --trace`')).toBe('stressts---trace');
    expect(anchorOf("The warm-up, and why its plan must share the run plan's hidden class")).toBe(
      'the-warm-up-and-why-its-plan-must-share-the-run-plans-hidden-class',
    );
  });

  it.each(docs)('%s: every relative link resolves', (doc) => {
    const text = readFileSync(join(repoRoot, doc), 'utf8');
    const found = links(text);
    expect(found.length).toBeGreaterThan(0);
    for (const target of found) {
      const [path = '', fragment] = target.split('#');
      const file = path === '' ? join(repoRoot, doc) : join(repoRoot, dirname(doc), path);
      expect(existsSync(file), `${doc}: ${target}`).toBe(true);
      if (fragment !== undefined)
        expect(anchors(readFileSync(file, 'utf8')).has(fragment), `${doc}: ${target}`).toBe(true);
    }
  });
});
