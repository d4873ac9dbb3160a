// dcmjs ships no type declarations and @types/dcmjs does not exist (toolchain.md §1).
declare module 'dcmjs';
