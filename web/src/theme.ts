import { createTheme } from '@mantine/core';

// Shades chosen for WCAG AA contrast (R-WEB-10): white on filled blue 8 is 4.9:1.
export const theme = createTheme({
  primaryColor: 'blue',
  primaryShade: 8,
  fontFamily: 'system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans", sans-serif',
  defaultRadius: 'sm',
});
