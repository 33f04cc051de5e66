package tasks

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/uberpopug/ates/ent/tasksdb"
	"github.com/uberpopug/ates/ent/tasksdb/predicate"
	"github.com/uberpopug/ates/ent/tasksdb/task"
	"github.com/uberpopug/ates/ent/tasksdb/tasksearch"
	"github.com/uberpopug/ates/services/errs"
	"github.com/uberpopug/ates/services/identity"
	"github.com/uberpopug/ates/services/page"
)

// MaxSearchLen bounds a search string: longer than any title, and short enough that a pattern
// costs the database little to match.
const MaxSearchLen = 200

// searchSeparator joins a task's texts in its search text: a character no text may hold, so a
// search never matches across the end of one and the start of the next.
const searchSeparator = "\x1f"

// SearchText is what searchTasks looks in for a task: its title, Jira id and description,
// case-folded (Unicode simple folding through strings.ToLower, identical on every database).
func SearchText(title string, jiraID *string, description string) string {
	j := ""
	if jiraID != nil {
		j = *jiraID
	}
	return strings.ToLower(title + searchSeparator + j + searchSeparator + description)
}

// Search returns the tasks whose title, Jira id or description contains search, ignoring case,
// newest first, optionally of one status; open to every authenticated employee as the board is
// (R-TASK-1). Percent signs, underscores and backslashes in search are taken literally.
func (s *Service) Search(ctx context.Context, actor identity.Actor, search string, status *Status, req page.Request) (page.Page[Task], error) {
	if actor.AccountID == uuid.Nil {
		return page.Page[Task]{}, errs.E(errs.Unauthenticated, "log in to search tasks")
	}
	if strings.TrimSpace(search) == "" || !utf8.ValidString(search) || utf8.RuneCountInString(search) > MaxSearchLen ||
		strings.Contains(search, searchSeparator) {
		return page.Page[Task]{}, errs.InvalidField("search", "search must be 1 to %d characters", MaxSearchLen)
	}
	needle := strings.ToLower(search)
	q := s.client.Task.Query().Where(searchTextContains(needle))
	// No counter knows how many tasks match a text: the total counts them (when asked for).
	// Every task has exactly one search text, stored with it, so without a status the
	// matching search texts are counted alone, without joining the tasks.
	count := func() (int, error) {
		return s.client.TaskSearch.Query().Where(tasksearch.SearchTextContains(needle)).Count(ctx)
	}
	if status != nil {
		q = q.Where(task.StatusEQ(task.Status(*status)))
		count = func() (int, error) { return q.Clone().Count(ctx) }
	}
	return s.listPage(ctx, q, req, count)
}

// searchTextContains holds for the tasks whose search text (task_search) contains needle:
// tasks.id IN (SELECT task_id FROM task_search WHERE search_text LIKE '%needle%'), the pattern
// escaped as Ent escapes it. On PostgreSQL the trigram index of task_search answers the LIKE.
func searchTextContains(needle string) predicate.Task {
	return func(s *entsql.Selector) {
		t := entsql.Table(tasksearch.Table)
		s.Where(entsql.In(s.C(task.FieldID),
			entsql.Select(t.C(tasksearch.FieldTaskID)).From(t).Where(entsql.Contains(t.C(tasksearch.FieldSearchText), needle))))
	}
}

// listPage reads one page of q newest first (by id), with the total from count when the
// request reads it.
func (s *Service) listPage(ctx context.Context, q *tasksdb.TaskQuery, req page.Request, count func() (int, error)) (page.Page[Task], error) {
	total, err := page.Total(req, count)
	if err != nil {
		return page.Page[Task]{}, fmt.Errorf("tasks: counting tasks: %w", err)
	}
	if req.After > 0 {
		q = q.Where(task.IDLT(int(req.After)))
	}
	rows, err := q.Order(tasksdb.Desc(task.FieldID)).Limit(req.First + 1).All(ctx)
	if err != nil {
		return page.Page[Task]{}, fmt.Errorf("tasks: listing tasks: %w", err)
	}
	p := page.Page[Task]{TotalCount: total, HasPrev: req.After > 0}
	if len(rows) > req.First {
		rows, p.HasNext = rows[:req.First], true
	}
	for _, r := range rows {
		p.Items = append(p.Items, toTask(r))
		p.Keys = append(p.Keys, int64(r.ID))
	}
	return p, nil
}
