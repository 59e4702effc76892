import { StrataError } from '../../src/errors.js';
import { expectUserError } from '../helpers/errors.js';
import { DEFAULT_TAG, formatRef, parseImageRef, parseTagRef } from '../../src/store/ref.js';

const HEX = '0123456789abcdef'.repeat(4);
const DIGEST = `sha256:${HEX}`;

function badRef(fn: () => unknown): StrataError {
  return expectUserError(fn, 'E_BAD_REF');
}

describe('parseImageRef', () => {
  test('name:tag', () => {
    expect(parseImageRef('pytorch:24.05')).toEqual({ name: 'pytorch', tag: '24.05', digest: undefined });
  });

  test('the tag defaults to latest', () => {
    expect(DEFAULT_TAG).toBe('latest');
    expect(parseImageRef('pytorch')).toEqual({ name: 'pytorch', tag: 'latest', digest: undefined });
  });

  test('surrounding spaces are ignored', () => {
    expect(parseImageRef('  pytorch:24.05 \n')).toMatchObject({ name: 'pytorch', tag: '24.05' });
  });

  test('nested names', () => {
    expect(parseImageRef('nvidia/cuda/base:12.4-ubuntu22.04')).toMatchObject({ name: 'nvidia/cuda/base', tag: '12.4-ubuntu22.04' });
  });

  test.each(['a.b', 'a_b', 'a__b', 'a-b', 'a--b', 'a1/b2'])('name %s is valid', (name) => {
    expect(parseImageRef(name).name).toBe(name);
  });

  test('name@sha256:… has no default tag', () => {
    expect(parseImageRef(`pytorch@${DIGEST}`)).toEqual({ name: 'pytorch', tag: undefined, digest: DIGEST });
  });

  test('name:tag@sha256:… keeps both', () => {
    expect(parseImageRef(`pytorch:24.05@${DIGEST}`)).toEqual({ name: 'pytorch', tag: '24.05', digest: DIGEST });
  });

  test('a bare sha256 digest', () => {
    expect(parseImageRef(DIGEST)).toEqual({ digest: DIGEST });
  });

  test('a registry host with a port is part of the name, not a tag', () => {
    expect(parseImageRef('registry.example.com:5000/team/img:1.0')).toEqual({ name: 'registry.example.com:5000/team/img', tag: '1.0', digest: undefined });
    expect(parseImageRef('localhost:5000/img')).toEqual({ name: 'localhost:5000/img', tag: 'latest', digest: undefined });
    expect(parseImageRef(`localhost:5000/img@${DIGEST}`)).toEqual({ name: 'localhost:5000/img', tag: undefined, digest: DIGEST });
  });

  test('a 128-character tag is accepted, 129 is not', () => {
    const tag = `v${'x'.repeat(127)}`;
    expect(parseImageRef(`img:${tag}`).tag).toBe(tag);
    badRef(() => parseImageRef(`img:${tag}x`));
  });

  test.each([
    ['empty', '', 'it is empty'],
    ['blank', '   ', 'it is empty'],
    ['upper-case name', 'PyTorch:24.05', 'not a valid name'],
    ['upper-case path component', 'team/PyTorch', 'not a valid name'],
    ['empty tag', 'pytorch:', 'not a valid tag'],
    ['tag starting with "."', 'pytorch:.hidden', 'not a valid tag'],
    ['tag starting with "-"', 'pytorch:-x', 'not a valid tag'],
    ['tag with "+"', 'pytorch:1+cu', 'not a valid tag'],
    ['name with a space', 'py torch', 'not a valid name'],
    ['name starting with a separator', '-pytorch', 'not a valid name'],
    ['name ending with a separator', 'pytorch-', 'not a valid name'],
    ['empty path component', 'team//img', 'not a valid name'],
    ['trailing slash', 'team/', 'not a valid name'],
    ['empty name before a tag', ':tag', 'not a valid name'],
    ['short digest', `pytorch@sha256:${HEX.slice(1)}`, 'is not a sha256 digest'],
    ['upper-case digest', `pytorch@sha256:${HEX.toUpperCase()}`, 'is not a sha256 digest'],
    ['other algorithm', `pytorch@sha512:${HEX}`, 'is not a sha256 digest'],
    ['empty digest', 'pytorch@', 'is not a sha256 digest'],
  ])('%s is refused', (_, text, why) => {
    const error = badRef(() => parseImageRef(text));
    expect(error.message).toContain(`"${text}"`);
    expect(error.message).toContain(why);
    expect(error.hint).toContain('NAME:TAG');
  });
});

describe('formatRef', () => {
  test.each(['pytorch:24.05', 'registry.example.com:5000/team/img:1.0', `pytorch@${DIGEST}`, `pytorch:1@${DIGEST}`, DIGEST])('%s round-trips', (text) => {
    expect(formatRef(parseImageRef(text))).toBe(text);
  });

  test('the default tag is written out', () => {
    expect(formatRef(parseImageRef('pytorch'))).toBe('pytorch:latest');
  });
});

describe('parseTagRef', () => {
  test('NAME:TAG', () => {
    expect(parseTagRef('team/pytorch:24.05')).toEqual({ name: 'team/pytorch', tag: '24.05' });
  });

  test('NAME alone means NAME:latest', () => {
    expect(parseTagRef('pytorch')).toEqual({ name: 'pytorch', tag: 'latest' });
  });

  test.each([DIGEST, `pytorch@${DIGEST}`, `pytorch:1@${DIGEST}`])('%s is not a NAME:TAG', (text) => {
    const error = badRef(() => parseTagRef(text));
    expect(error.message).toContain('is not a NAME:TAG');
    expect(error.hint).toContain('--tag');
  });

  test('invalid references are refused as such', () => {
    expect(badRef(() => parseTagRef('Bad:1')).message).toContain('not a valid name');
    expect(badRef(() => parseTagRef('')).message).toContain('empty');
  });
});
