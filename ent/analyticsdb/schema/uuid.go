package schema

import "github.com/google/uuid"

func uuidType() uuid.UUID { return uuid.UUID{} }
