package hris

// BambooHR field names (the API names used in ?fields= and update bodies).
const (
	FieldID                      = "id"
	FieldEmployeeNumber          = "employeeNumber"
	FieldFirstName               = "firstName"
	FieldLastName                = "lastName"
	FieldPreferredName           = "preferredName"
	FieldDisplayName             = "displayName"
	FieldDepartment              = "department"
	FieldJobTitle                = "jobTitle"
	FieldLocation                = "location"
	FieldSupervisorID            = "supervisorEId"
	FieldHireDate                = "hireDate"
	FieldTerminationDate         = "terminationDate"
	FieldEmploymentHistoryStatus = "employmentHistoryStatus"
	FieldStatus                  = "status"
	FieldWorkEmail               = "workEmail"
	FieldHomeEmail               = "homeEmail"
	FieldLastChanged             = "lastChanged"
)

// Worker is one HRIS employee record as Joinery reads it. Every value is the
// HRIS's string; an empty value is "".
type Worker struct {
	// ID is the HRIS employee id (BambooHR "id").
	ID string
	// EmployeeNumber is the HR-assigned number ("employeeNumber").
	EmployeeNumber string
	// FirstName, LastName and PreferredName are the legal and preferred names.
	FirstName     string
	LastName      string
	PreferredName string
	// DisplayName is the HRIS-computed display name (read-only).
	DisplayName string
	// Department, JobTitle and Location drive policy (groups, approval).
	Department string
	JobTitle   string
	Location   string
	// SupervisorID is the manager's employee id ("supervisorEId").
	SupervisorID string
	// HireDate and TerminationDate are YYYY-MM-DD or "".
	HireDate        string
	TerminationDate string
	// EmploymentStatus is e.g. "Full-Time" or "Contractor"
	// ("employmentHistoryStatus").
	EmploymentStatus string
	// Status is "Active" or "Inactive".
	Status string
	// WorkEmail and HomeEmail are the addresses on record.
	WorkEmail string
	HomeEmail string
	// Username is the directory username Joinery wrote back (the configured
	// UsernameField, "customUsername" by default).
	Username string
	// LastChanged is the HRIS's last-modification timestamp of the record.
	LastChanged string
}

// workerFields lists the fields GetWorker requests.
func (c *Client) workerFields() []string {
	return []string{
		FieldEmployeeNumber, FieldFirstName, FieldLastName, FieldPreferredName,
		FieldDisplayName, FieldDepartment, FieldJobTitle, FieldLocation,
		FieldSupervisorID, FieldHireDate, FieldTerminationDate,
		FieldEmploymentHistoryStatus, FieldStatus, FieldWorkEmail, FieldHomeEmail,
		c.usernameField, FieldLastChanged,
	}
}

func (c *Client) workerFromFields(id string, f map[string]string) Worker {
	return Worker{
		ID:               id,
		EmployeeNumber:   f[FieldEmployeeNumber],
		FirstName:        f[FieldFirstName],
		LastName:         f[FieldLastName],
		PreferredName:    f[FieldPreferredName],
		DisplayName:      f[FieldDisplayName],
		Department:       f[FieldDepartment],
		JobTitle:         f[FieldJobTitle],
		Location:         f[FieldLocation],
		SupervisorID:     f[FieldSupervisorID],
		HireDate:         f[FieldHireDate],
		TerminationDate:  f[FieldTerminationDate],
		EmploymentStatus: f[FieldEmploymentHistoryStatus],
		Status:           f[FieldStatus],
		WorkEmail:        f[FieldWorkEmail],
		HomeEmail:        f[FieldHomeEmail],
		Username:         f[c.usernameField],
		LastChanged:      f[FieldLastChanged],
	}
}
