import { describe, expect, it } from 'vitest';
import { formatProblem, parseIntegrations, renderIntegrations } from './documents.ts';

const STRIPE = `apiVersion: breakwater.dev/v1alpha1
kind: ExternalIntegration
metadata: { name: stripe }
spec: { upstream: { url: https://api.stripe.com } }
`;

describe('parseIntegrations', () => {
  it('reads every document of a stream and skips empty ones', () => {
    const { integrations, problems } = parseIntegrations(`---\n${STRIPE}---\n---\n${STRIPE.replace('stripe }', 'geo }')}`);
    expect(problems).toEqual([]);
    expect(integrations.map((i) => i.metadata.name)).toEqual(['stripe', 'geo']);
  });

  it('reports YAML syntax errors with line and column, never a stack trace', () => {
    const { problems } = parseIntegrations(`${STRIPE}---\nspec:\n  upstream: [\n`);
    expect(problems).toHaveLength(1);
    expect(formatProblem('x.yaml', problems[0]!)).toMatch(/^x\.yaml:\d+:\d+: \S/);
    expect(formatProblem('x.yaml', problems[0]!)).not.toMatch(/\n|at line/);
  });

  it('names the document, its field and the line the field is on', () => {
    const { problems } = parseIntegrations(`${STRIPE}---\n${STRIPE.replace('stripe }', 'geo }').replace('https://api.stripe.com', 'nope')}`);
    expect(problems.map((p) => formatProblem('x.yaml', p))).toEqual([
      'x.yaml:9:26: geo: spec.upstream.url: must start with http:// or https://',
      'x.yaml:9:26: geo: spec.upstream.url: must name a host',
    ]);
  });

  it('gives lines in the file, not positions in the stream, for block documents after comments and empty ones', () => {
    const text = [
      '# integrations for the billing team', // 1
      '---', // 2
      '---', // 3
      'apiVersion: breakwater.dev/v1alpha1', // 4
      'kind: ExternalIntegration', // 5
      'metadata:', // 6
      '  name: invoicing', // 7
      'spec:', // 8
      '  upstream:', // 9
      '    url: https://api.invoicing.example', // 10
      '  retry:', // 11
      '    maxAttempts: 99', // 12
      '    retryOn: [reset, "600"]', // 13
      '  circuitBreaker: {}', // 14
      '---', // 15
      'apiVersion: breakwater.dev/v1alpha1', // 16
      'kind: ExternalIntegration', // 17
      'metadata:', // 18
      '  name: courier', // 19
      'spec:', // 20
      '  timeouts: { total: 5s }', // 21
      '',
    ].join('\n');
    const found = parseIntegrations(text).problems.map((p) => [p.path, p.line, p.column]);
    expect(found).toContainEqual(['spec.retry.maxAttempts', 12, 18]);
    expect(found).toContainEqual(['spec.retry.retryOn[1]', 13, 22]);
    // A missing field: its closest ancestor that is there.
    expect(found).toContainEqual(['spec.upstream', 21, 3]);
    for (const [, line] of found) expect(line).toBeGreaterThan(3);
  });

  it('rejects two documents with the same name, naming the line of the first', () => {
    const { integrations, problems } = parseIntegrations(`${STRIPE}---\n${STRIPE}`);
    expect(integrations).toHaveLength(1);
    expect(problems.map((p) => formatProblem('x.yaml', p))).toEqual(['x.yaml:8:19: stripe: metadata.name: duplicates the document at line 1']);
  });

  it('renders a stream that parses back to the same integrations', () => {
    const { integrations } = parseIntegrations(`${STRIPE}---\n${STRIPE.replace('stripe }', 'geo }')}`);
    expect(parseIntegrations(renderIntegrations(integrations)).integrations).toEqual(integrations);
  });
});
