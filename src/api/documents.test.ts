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

  it('names the document and its field in each problem', () => {
    const { problems } = parseIntegrations(`${STRIPE}---\n${STRIPE.replace('stripe }', 'geo }').replace('https://api.stripe.com', 'nope')}`);
    expect(problems.map((p) => formatProblem('x.yaml', p))).toEqual([
      'x.yaml:2 geo: spec.upstream.url: must start with http:// or https://',
      'x.yaml:2 geo: spec.upstream.url: must name a host',
    ]);
  });

  it('rejects two documents with the same name', () => {
    const { integrations, problems } = parseIntegrations(`${STRIPE}---\n${STRIPE}`);
    expect(integrations).toHaveLength(1);
    expect(problems.map((p) => formatProblem('x.yaml', p))).toEqual(['x.yaml:2 stripe: metadata.name: duplicates document 1']);
  });

  it('renders a stream that parses back to the same integrations', () => {
    const { integrations } = parseIntegrations(`${STRIPE}---\n${STRIPE.replace('stripe }', 'geo }')}`);
    expect(parseIntegrations(renderIntegrations(integrations)).integrations).toEqual(integrations);
  });
});
