/**
 * A worklist row's viewer link from worklist.viewerUrlPattern. {study} and {accession} are URL-encoded (a UID is
 * safe, an accession number need not be); {host} is the host name the page was loaded from, so the built-in
 * viewer's link works from any reading-room workstation without naming the server in the config.
 */
export function viewerUrl(pattern: string, row: { study: string; accessionNumber: string | null }, host: string, viewerPort: number): string {
  return pattern
    .replaceAll('{study}', encodeURIComponent(row.study))
    .replaceAll('{accession}', encodeURIComponent(row.accessionNumber ?? ''))
    .replaceAll('{host}', host)
    .replaceAll('{viewerPort}', String(viewerPort));
}
