package tasks

import (
	"regexp"

	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/text"
)

// Limits of R-TASK-2, and the jiraId's, which the SPEC leaves open (R-SEC-6).
const (
	MaxTitleLen       = 200
	MaxDescriptionLen = 10000
	MaxJiraIDLen      = 32
)

var jiraPattern = regexp.MustCompile(`^[A-Z][A-Z0-9]*-[0-9]+$`)

// The text rules of a task's fields (R-TASK-2, R-SEC-6): a title is one line, a description
// may hold line breaks and tabs.
var (
	titleRule       = text.Rule{Min: 1, Max: MaxTitleLen}
	descriptionRule = text.Rule{Min: 1, Max: MaxDescriptionLen, Multiline: true}
)

// NewTask is what creating a task needs (R-TASK-2).
type NewTask struct {
	Title       string
	JiraID      *string
	Description string
}

// Validate checks every rule of R-TASK-2 and R-SEC-6 and reports every offending field at
// once (errs.InvalidFields: Field names the first). Title and description are taken as given
// (no trimming), but must not be blank.
func (n NewTask) Validate() error {
	return errs.InvalidFields(n.checkTitle(), n.checkJiraID(), text.Field("description", "description", n.Description, descriptionRule))
}

func (n NewTask) checkTitle() *errs.Error {
	if e := text.Field("title", "title", n.Title, titleRule); e != nil {
		return e
	}
	if c, ok := text.SquareBracket(n.Title); ok {
		if c == '[' || c == ']' {
			return errs.InvalidField("title", "title must not contain '[' or ']': put the Jira id in jiraId")
		}
		return errs.InvalidField("title", "title must not contain square brackets or characters like them (%q): put the Jira id in jiraId", c)
	}
	return nil
}

// checkJiraID: the pattern admits ASCII only, so look-alike brackets, letters and digits are
// refused with it (R-SEC-6).
func (n NewTask) checkJiraID() *errs.Error {
	if n.JiraID == nil {
		return nil
	}
	if len(*n.JiraID) > MaxJiraIDLen {
		return errs.InvalidField("jiraId", "jiraId must be at most %d characters", MaxJiraIDLen)
	}
	if !jiraPattern.MatchString(*n.JiraID) {
		return errs.InvalidField("jiraId", "jiraId must look like UBERPOP-42 (capital letters and digits, a dash, a number)")
	}
	return nil
}
