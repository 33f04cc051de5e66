package tasks

import (
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/uberpopug/ates/services/errs"
)

// Limits of R-TASK-2.
const (
	MaxTitleLen       = 200
	MaxDescriptionLen = 10000
)

var jiraPattern = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[0-9]+$`)

// NewTask is what creating a task needs (R-TASK-2).
type NewTask struct {
	Title       string
	JiraID      *string
	Description string
}

// Validate checks every rule of R-TASK-2; the error names the offending field. Title and
// description are taken as given (no trimming), but must not be blank.
func (n NewTask) Validate() error {
	if l := utf8.RuneCountInString(n.Title); !utf8.ValidString(n.Title) || strings.TrimSpace(n.Title) == "" || l > MaxTitleLen {
		return errs.InvalidField("title", "title must be 1 to %d characters", MaxTitleLen)
	}
	if strings.ContainsAny(n.Title, "[]") {
		return errs.InvalidField("title", "title must not contain '[' or ']': put the Jira id in jiraId")
	}
	if n.JiraID != nil && !jiraPattern.MatchString(*n.JiraID) {
		return errs.InvalidField("jiraId", "jiraId must look like UBERPOP-42 (capital letters and digits, a dash, a number)")
	}
	if l := utf8.RuneCountInString(n.Description); !utf8.ValidString(n.Description) || strings.TrimSpace(n.Description) == "" || l > MaxDescriptionLen {
		return errs.InvalidField("description", "description must be 1 to %d characters", MaxDescriptionLen)
	}
	return nil
}
