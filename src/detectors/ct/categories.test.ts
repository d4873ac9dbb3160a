import { describe, expect, it } from 'vitest';
import { fleischnerBand, lungRadsCategory } from './categories.ts';

describe('Lung-RADS v2022 size categories', () => {
  it('solid: 2 below 6 mm, 3 from 6, 4A from 8, 4B from 15', () => {
    const cat = (d: number): string => lungRadsCategory({ type: 'solid', meanDiameterMm: d });
    expect([3, 5.9, 6, 7.9, 8, 14.9, 15, 30].map(cat)).toEqual(['2', '2', '3', '3', '4A', '4A', '4B', '4B']);
  });
  it('part-solid: 2 below 6 mm total; 3 with a solid part below 6; 4A with 6 to < 8; 4B from 8', () => {
    const cat = (d: number, s?: number): string => lungRadsCategory({ type: 'part-solid', meanDiameterMm: d, solidMeanDiameterMm: s });
    expect(cat(5.9, 4)).toBe('2');
    expect(cat(6, 2)).toBe('3');
    expect(cat(12, 5.9)).toBe('3');
    expect(cat(12)).toBe('3');
    expect(cat(12, 6)).toBe('4A');
    expect(cat(12, 7.9)).toBe('4A');
    expect(cat(12, 8)).toBe('4B');
  });
  it('ground-glass: 2 below 30 mm, 3 from 30', () => {
    const cat = (d: number): string => lungRadsCategory({ type: 'ground-glass', meanDiameterMm: d });
    expect([5, 29.9, 30, 45].map(cat)).toEqual(['2', '2', '3', '3']);
  });
});

describe('Fleischner 2017 size bands', () => {
  it('< 6 mm, 6–8 mm inclusive, > 8 mm, on the mean diameter rounded to the nearest millimetre', () => {
    expect([4, 5.4, 5.5, 5.9, 6, 7.5, 8, 8.4, 8.5, 20].map((d) => fleischnerBand({ meanDiameterMm: d }))).toEqual(['<6 mm', '<6 mm', '6-8 mm', '6-8 mm', '6-8 mm', '6-8 mm', '6-8 mm', '6-8 mm', '>8 mm', '>8 mm']);
  });
});
