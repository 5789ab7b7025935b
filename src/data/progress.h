// Progress lines on stderr: one line rewritten in place ("\r" + text) while long work runs, and
// ended before anything else is printed there, so an error or a warning never lands on the same
// line as the progress text. One process-wide line (stderr is one per process).
#pragma once
#include <string>

namespace prm {

// Rewrites the progress line with `text` (padded, so a shorter text hides a longer one).
void progress_update(const std::string& text);
// Ends the progress line with a newline, if one is open; then anything may be printed.
void progress_end();

}  // namespace prm
